"""Regression, target transforms, BatchNorm and grouped convolutions against independent
references: per-model nn.BatchNorm2d / nn.Conv2d in float64, hand-computed metrics, and the
least-squares solution."""

import numpy as np
import pytest
import torch

from scalelab import StackedGroup, expand, make_transform
from scalelab._spec import ModelSpec
from scalelab.models import BatchNorm, Conv, Pass, build_model, stack_params
from scalelab._spec import SpecError, parse_spec
from scalelab.data._synthetic import add_features, make_heatmap, make_sin_plus_y

from scalelab import TRANSFORMS  # noqa: E402

# every registered transform with its defaults, plus the settings the target section uses
TARGET_TRANSFORMS = [(name, {}) for name in TRANSFORMS] + [
    ("scale", {"factor": 1e3}), ("standardize", {"per_feature": False}), ("minmax", {"per_feature": False}),
    ("minmax", {"feature_range": (-1.0, 1.0), "per_feature": True})]


@pytest.mark.parametrize("name,kw", TARGET_TRANSFORMS)
def test_target_transforms_round_trip_on_heatmap_targets(name, kw):
    Y = make_heatmap(60, 10, seed=1).y_train        # tiny values, many exact zeros
    tf = make_transform(name, **kw).fit(Y)
    Z = tf.transform(Y)
    np.testing.assert_allclose(tf.inverse_transform(Z), Y, rtol=0, atol=1e-15)
    if name == "minmax" and not kw.get("per_feature", True):
        assert Z.min() == pytest.approx(0) and Z.max() == pytest.approx(1)


def regression_spec(**over):
    d = {"name": "reg", "profile": "torch", "seeds": [0, 1],
         "data": {"dataset": "sin-plus-y", "n_samples": 400, "validation": 100},
         "loss": {"name": "mse"}, "model": {"hidden": [16]},
         "train": {"dtype": "float64", "epochs": 1, "batch_size": 32}}
    for k, v in over.items():
        sec, _, key = k.partition("__")
        d.setdefault(sec, {})[key] = v
    return parse_spec(d)


def test_metrics_in_original_units_equal_a_hand_computation():
    spec = parse_spec({**regression_spec().model_dump(), "grid": {"target.transform": ["none", "standardize", "minmax"]}})
    g = StackedGroup(expand(spec), None)
    for s in range(5):
        g.train_step(g.permutations()[:, s * 32:(s + 1) * 32])
    res = g.evaluate(g.X_test, g.y_test)
    X, y = g.split.X_test, g.split.y_test                       # original units
    for m, t in enumerate(g.trials):
        W0, b0 = (g.params[k][m].detach().numpy() for k in ("dense0.W", "dense0.b"))
        W1, b1 = (g.params[k][m].detach().numpy() for k in ("dense1.W", "dense1.b"))
        out = np.maximum(X @ W0 + b0, 0) @ W1 + b1
        tf = make_transform(t.spec["target"]["transform"], **({"per_feature": False}
                                                              if t.spec["target"]["transform"] != "none" else {}))
        pred = tf.fit(g.split.y_train).inverse_transform(out)   # back to original units
        mse = np.mean((pred - y) ** 2)
        r2 = 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean(0)) ** 2)
        corr = np.corrcoef(pred.ravel(), y.ravel())[0, 1]
        assert res["mse"][m] == pytest.approx(mse, rel=1e-10)
        assert res["r2"][m] == pytest.approx(r2, rel=1e-10)
        assert res["corr"][m] == pytest.approx(corr, rel=1e-9)
        # and the loss is the objective in the model's own (transformed) units
        assert res["loss"][m] == pytest.approx(np.mean((out - tf.transform(y)) ** 2), rel=1e-10)


def test_linear_regression_reaches_least_squares():
    # a linear model (no hidden layer) trained by SGD converges to numpy's lstsq solution
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3))
    y = X @ np.array([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * rng.normal(size=(256, 1))
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "lin.npz"
    np.savez(path, X=X, y=y, X_test=X[:10], y_test=y[:10])
    spec = parse_spec({"name": "lin", "profile": "torch", "seeds": [0],
                       "data": {"dataset": "file", "path": str(path), "task": "regression"},
                       "loss": {"name": "mse"}, "model": {"hidden": []},
                       "optim": {"name": "sgd", "lr": 0.05},
                       "train": {"dtype": "float64", "epochs": 400, "batch_size": 256, "shuffle": False}})
    g = StackedGroup(expand(spec), None)
    for _ in range(400):
        g.train_step(torch.arange(256).view(1, -1))
    coef, *_ = np.linalg.lstsq(np.column_stack([X, np.ones(256)]), y, rcond=None)
    got = np.concatenate([g.params["dense0.W"][0].detach().numpy(), g.params["dense0.b"][0].detach().numpy()])
    np.testing.assert_allclose(got, coef, atol=1e-8)


def stacked_and_reference(batchnorm: bool, seed_list=(0, 1, 2)):
    """The stacked FCN and, per model, the same net built from nn.Conv2d / nn.BatchNorm2d."""
    model = build_model(ModelSpec(kind="fcn", conv=[5, 3], kernel=3, batchnorm=batchnorm, bn_momentum=0.99,
                                  bn_eps=1e-3, activation="relu"), 4 * 6 * 6, 6 * 6, (4, 6, 6))
    layers = [layer for layer in model.layers if isinstance(layer, (Conv, BatchNorm))]
    per = [model.init(s, "glorot_uniform", 1.0, "torch_default") for s in seed_list]
    params = {k: v.requires_grad_() for k, v in stack_params(per, torch.float64, "cpu").items()}
    refs = []
    for p in per:
        mods = []
        for layer in layers:
            if isinstance(layer, Conv):
                c = torch.nn.Conv2d(layer.c_in, layer.c_out, layer.k, padding=layer.k // 2).double()
                with torch.no_grad():
                    w = torch.as_tensor(p[layer.weight])                 # (c_in·k·k, c_out)
                    c.weight.copy_(w.T.reshape(layer.c_out, layer.c_in, layer.k, layer.k))
                    c.bias.copy_(torch.as_tensor(p[layer.bias][0]))
                mods.append(c)
            else:
                bn = torch.nn.BatchNorm2d(layer.channels, eps=1e-3, momentum=0.01).double()
                with torch.no_grad():
                    bn.weight.copy_(torch.as_tensor(p[layer.gamma][0]) + 0.1 * layer.index + 0.2)  # not just ones
                    bn.bias.copy_(torch.as_tensor(p[layer.beta][0]) - 0.3)
                mods.append(bn)
            # conv → (BN →) ReLU for every block; the head conv has no activation
            if isinstance(layer, BatchNorm) or (layer is not layers[-1] and not batchnorm):
                mods.append(torch.nn.ReLU())
        refs.append(torch.nn.Sequential(*mods))
    with torch.no_grad():  # the stacked BN parameters take the same (non-trivial) values
        for layer in layers:
            if isinstance(layer, BatchNorm):
                params[layer.gamma] += 0.1 * layer.index + 0.2
                params[layer.beta] -= 0.3
    buffers = model.buffers(len(seed_list), torch.float64, "cpu")
    return model, layers, params, buffers, refs


@pytest.mark.parametrize("batchnorm", [False, True])
def test_stacked_conv_and_batchnorm_equal_per_model_torch_modules(batchnorm):
    model, layers, params, buffers, refs = stacked_and_reference(batchnorm)
    M = len(refs)
    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.normal(size=(M, 8, 4 * 6 * 6)))        # each model its own batch
    target = torch.as_tensor(rng.normal(size=(M, 8, 36)))
    for step in range(2):  # train mode twice (running stats move), then eval mode
        out = model.forward(params, x, Pass(M, True, buffers))
        loss = ((out - target) ** 2).mean(dim=(1, 2)).sum()
        grads = torch.autograd.grad(loss, list(params.values()))
        for m, ref in enumerate(refs):
            ref.train()
            o = ref(x[m].view(8, 4, 6, 6)).reshape(8, -1)
            torch.testing.assert_close(out[m], o, rtol=1e-12, atol=1e-12)
            l = ((o - target[m]) ** 2).mean()
            rg = torch.autograd.grad(l, list(ref.parameters()))
            names = [n for layer in layers for n in ((layer.weight, layer.bias) if isinstance(layer, Conv)
                                                      else (layer.gamma, layer.beta))]
            for n, g_ref in zip(names, rg):
                g = dict(zip(params, grads))[n][m]
                if n.startswith("conv") and n.endswith(".W"):
                    lay = next(l_ for l_ in layers if isinstance(l_, Conv) and l_.weight == n)
                    g = g.T.reshape(lay.c_out, lay.c_in, lay.k, lay.k)
                torch.testing.assert_close(g.reshape(g_ref.shape), g_ref, rtol=1e-10, atol=1e-12)
    # eval mode: running statistics, forward and gradients
    out = model.forward(params, x, Pass(M, False, buffers))
    grads = dict(zip(params, torch.autograd.grad(((out - target) ** 2).mean(dim=(1, 2)).sum(), list(params.values()))))
    with torch.no_grad():
        for m, ref in enumerate(refs):
            ref.eval()
            with torch.enable_grad():
                o = ref(x[m].view(8, 4, 6, 6)).reshape(8, -1)
                rg = torch.autograd.grad(((o - target[m]) ** 2).mean(), list(ref.parameters()))
            torch.testing.assert_close(out[m], o, rtol=1e-12, atol=1e-12)
            names = [n for layer in layers for n in ((layer.weight, layer.bias) if isinstance(layer, Conv)
                                                      else (layer.gamma, layer.beta))]
            for n, g_ref in zip(names, rg):
                g = grads[n][m]
                if n.startswith("conv") and n.endswith(".W"):
                    lay = next(l_ for l_ in layers if isinstance(l_, Conv) and l_.weight == n)
                    g = g.T.reshape(lay.c_out, lay.c_in, lay.k, lay.k)
                torch.testing.assert_close(g.reshape(g_ref.shape), g_ref, rtol=1e-10, atol=1e-12)
            bns = [mod for mod in ref if isinstance(mod, torch.nn.BatchNorm2d)]
            for layer, bn in zip([l_ for l_ in layers if isinstance(l_, BatchNorm)], bns):
                C = layer.channels
                torch.testing.assert_close(buffers[layer.gamma + ".mean"][m * C:(m + 1) * C], bn.running_mean)
                torch.testing.assert_close(buffers[layer.gamma + ".var"][m * C:(m + 1) * C], bn.running_var)


def test_mlp_batchnorm_equals_batchnorm1d():
    spec = regression_spec(model__batchnorm=True)
    g = StackedGroup(expand(spec), None)
    x = g.inputs(g.X_train, g.permutations()[:, :32])
    out = g.forward(g.params, x, training=True)
    for m in range(g.M):
        lin0 = torch.nn.Linear(2, 16).double()
        bn = torch.nn.BatchNorm1d(16, eps=1e-5, momentum=0.1).double()
        lin1 = torch.nn.Linear(16, 1).double()
        with torch.no_grad():
            lin0.weight.copy_(g.params["dense0.W"][m].T)
            lin0.bias.copy_(g.params["dense0.b"][m, 0])
            lin1.weight.copy_(g.params["dense1.W"][m].T)
            lin1.bias.copy_(g.params["dense1.b"][m, 0])
        ref = torch.nn.Sequential(lin0, bn, torch.nn.ReLU(), lin1).train()
        torch.testing.assert_close(out[m], ref(x[m]), rtol=1e-12, atol=1e-12)


def test_synthetic_tasks_and_features():
    hm = make_heatmap(50, 10, seed=2)
    assert hm.X_train.shape == (50, 576) and hm.y_train.max() <= 1e-2 and hm.y_train.min() >= 0
    assert np.mean(hm.y_train > 1e-3) < 0.2                     # mostly near zero
    np.testing.assert_array_equal(make_heatmap(50, 10, seed=2).y_train, hm.y_train)  # deterministic
    f = make_sin_plus_y(100, 50, seed=0, noise=0.0)
    np.testing.assert_allclose(f.y_train[:, 0], np.sin(f.X_train[:, 0]) + f.X_train[:, 1])
    assert f.X_train[:, 0].max() <= np.pi and f.X_test[:, 0].min() >= np.pi   # extrapolation box beside
    X = add_features(f.X_train, ["sin(x0)", "square(x1)"])
    np.testing.assert_allclose(X[:, 2], np.sin(f.X_train[:, 0]))
    np.testing.assert_allclose(X[:, 3], f.X_train[:, 1] ** 2)
    with pytest.raises(ValueError, match="write fn\\(xN\\)"):
        add_features(f.X_train, ["sinh(x0)"])
    with pytest.raises(ValueError, match="only 2 raw columns"):
        add_features(f.X_train, ["sin(x5)"])


def test_fcn_spec_errors():
    with pytest.raises(SpecError, match="model.kind = 'mlp'"):
        expand(regression_spec(input__equivalent_to=1.0, model__kind="fcn"))
    with pytest.raises(ValueError, match="needs image-shaped inputs"):
        StackedGroup(expand(regression_spec(model__kind="fcn")), None)


def test_builtin_regression_studies_run_small_and_store_original_unit_metrics(tmp_path):
    from scalelab import Store, builtin_spec, run_study, summarize
    from scalelab._study import with_overrides

    spec = with_overrides(builtin_spec("batchnorm-regression"),
                          ["seeds=1", "data.n_samples=120", "data.validation=40", "train.epochs=1",
                           "model.conv=[4]"])
    db = tmp_path / "s.db"
    run_study(spec, db)
    recs = summarize(Store(db), "batchnorm-regression")
    assert len(recs) == 6 and {tuple(r["level"].values()) for r in recs} == \
        {(bn, t) for bn in (False, True) for t in ("none", "minmax", "standardize")}
    for r in recs:
        assert r["test_rmse"]["mean"] > 0 and r["test_r2"]["mean"] is not None and r["test_accuracy"]["mean"] is None
    spec = with_overrides(builtin_spec("function-approximation"), ["seeds=1", "data.n_samples=200",
                                                                   "data.validation=50", "train.epochs=1"])
    run_study(spec, db)
    recs = summarize(Store(db), "function-approximation")
    assert len(recs) == 8 and all(r["val_rmse"]["mean"] > 0 for r in recs)
    # reports of studies with boolean and list-valued factors
    from scalelab.report._html import write_report

    for study in ("batchnorm-regression", "function-approximation"):
        text = write_report(Store(db), study, tmp_path / f"{study}.html").read_text()
        assert "data-plot='curves'" in text and "test RMSE" in text
