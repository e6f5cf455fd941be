"""The exact reparametrization of an input scale, proved by training (float64, same batches)."""

import json

import numpy as np
import pytest
import torch

from conftest import requires_real, small_spec
from scalelab import StackedGroup, expand, make_transform
from scalelab._cli import main
from scalelab.data._sklearn import load_sklearn
from scalelab._equivalence import fold_affine, parametrization
from scalelab._equivalence_check import check_equivalence
from scalelab._spec import ModelSpec
from scalelab.models import Pass, build_model, stack_params
from scalelab._spec import SpecError, parse_spec
from scalelab._study import builtin_spec, with_overrides

CONFIGS = [
    ("sgd", {}),
    ("momentum", {}),
    ("adam", {"eps_mode": "torch"}),
    ("adam", {"eps_mode": "keras"}),
    ("adam", {"eps_mode": "keras", "l2": 1e-4}),
    ("adamw", {"eps_mode": "torch", "weight_decay": 1e-2}),
    ("adamw", {"eps_mode": "keras", "weight_decay": 1e-2}),
]


@requires_real
@pytest.mark.parametrize("c,tol", [(256, 1e-12), (255, 1e-9)])
@pytest.mark.parametrize("optimizer,kw", CONFIGS)
def test_exact_reparametrization_on_fashion_mnist(optimizer, kw, c, tol):
    r = check_equivalence(c, optimizer, steps=300, hidden=(32,), train_subset=6000, **kw)
    assert r["exact"]["max_loss_diff"] <= tol and r["exact"]["max_w1_diff"] <= tol, r["exact"]
    # nothing changed but the inputs: training differs at once
    assert r["naive"]["max_loss_diff"] >= 1e-3, r["naive"]
    if optimizer in ("sgd", "momentum") or kw.get("eps_mode") == "keras":
        # the learning-rate fix alone is not enough (SGD: lr/c instead of lr/c²; Adam: eps not scaled)
        assert r["lr_only"]["max_loss_diff"] >= 1e-3, r["lr_only"]


def test_exact_on_digits_any_optimizer_without_downloads():
    # scikit-learn's digits (0..16, many always-dark pixels), so this runs everywhere
    for optimizer in ("sgd", "adam"):
        r = check_equivalence(16.0, optimizer, steps=100, dataset="digits", base_scale=1 / 16, hidden=(16,),
                              train_subset=1000)
        assert r["exact"]["max_loss_diff"] == 0.0 and r["exact"]["max_w1_diff"] == 0.0  # power of 2: bit-identical
        assert r["naive"]["max_w1_diff"] > 1e-3


def test_rules_follow_from_one_sgd_and_one_adam_step_by_hand():
    # A linear least-squares model, one step by hand in numpy: B (inputs × c, W/c, rules applied)
    # must land exactly on A's weights divided by c.
    rng = np.random.default_rng(0)
    X, y, W = rng.normal(size=(8, 5)), rng.normal(size=(8, 1)), rng.normal(size=(5, 1))
    c, lr, eps = 7.0, 0.05, 1e-3
    grad = lambda X, W: 2 * X.T @ (X @ W - y) / len(X)  # noqa: E731
    p = parametrization(c, "sgd")
    W_a = W - lr * grad(X, W)
    W_b = W * p.init_scale - lr * p.lr_mult * grad(X * c, W * p.init_scale)
    np.testing.assert_allclose(W_b * c, W_a, rtol=1e-13)
    p = parametrization(c, "adam")  # first Adam step (bias-corrected): lr · g / (|g| + eps)
    g_a, g_b = grad(X, W), grad(X * c, W * p.init_scale)
    W_a = W - lr * g_a / (np.abs(g_a) + eps)
    W_b = W * p.init_scale - lr * p.lr_mult * g_b / (np.abs(g_b) + eps * p.eps_mult)
    np.testing.assert_allclose(W_b * c, W_a, rtol=1e-13)
    assert (p.l2_mult, p.wd_mult) == (c * c, c) and parametrization(c, "momentum").wd_mult == c * c


def test_affine_fold_standardize_versus_divide_by_255():
    ds = load_sklearn("digits")  # values 0..16 with constant (always 0) columns
    X = ds.X_train.astype(np.float64) * 16  # 0..256, like pixels
    a = make_transform("scale", factor=1 / 255).fit(X)
    b = make_transform("standardize").fit(X)
    model = build_model(ModelSpec(hidden=[20], activation="relu"), X.shape[1], 10)
    p = model.init(3, "glorot_uniform", 1.0, "torch_default")
    W2, b2 = fold_affine(p["dense0.W"], p["dense0.b"], a.scale_, a.offset_, b.scale_, b.offset_)
    q = dict(p, **{"dense0.W": W2, "dense0.b": b2})
    P, Q = stack_params([p], torch.float64, "cpu"), stack_params([q], torch.float64, "cpu")
    out_a = model.forward(P, torch.as_tensor(a.transform(X))[None], Pass(1))
    out_b = model.forward(Q, torch.as_tensor(b.transform(X))[None], Pass(1))
    assert float((out_a - out_b).abs().max()) <= 1e-12 * float(out_a.abs().max())
    # and a shift cannot be folded the other way round when a feature's target scale is 0
    with pytest.raises(ValueError, match="zero scale"):
        fold_affine(p["dense0.W"], p["dense0.b"], 1.0, 0.0, np.zeros(X.shape[1]), 0.0)


def test_equivalent_to_as_a_study_factor(fake_fmnist):
    # the built-in study's arms on small data in float64: B* trains exactly as A, B does not
    spec = builtin_spec("weight-vs-feature-scale")
    spec = with_overrides(spec, [f"data.dir='{fake_fmnist}'", "data.verify=false", "data.train_subset=400",
                                 "data.validation=100", "model.hidden=[24, 12]", "train.dtype='float64'",
                                 "seeds=1"])
    trials = expand(spec)
    assert [t.level for t in trials] == [{"arm": "A"}, {"arm": "B"}, {"arm": "B*"}]
    g = StackedGroup(trials, str(fake_fmnist))
    W1 = g.layers[0].weight
    assert torch.equal(g.params[W1][1], g.params[W1][2])  # B and B* start alike
    perm = g.permutations()
    diffs = []
    for s in range(g.steps_per_epoch):
        loss, _, _ = g.train_step(perm[:, s * 32:(s + 1) * 32])
        diffs.append((abs(float(loss[2] - loss[0])), abs(float(loss[1] - loss[0]))))
    d = np.array(diffs)
    assert d[:, 0].max() <= 1e-9 and d[-1, 1] >= 1e-3
    np.testing.assert_allclose((g.params[W1][2] * 255).detach(), g.params[W1][0].detach(), atol=1e-9)


def test_spec_errors_for_equivalence_and_arms(tmp_path):
    with pytest.raises(SpecError, match="equivalent_to needs input.transform"):
        expand(parse_spec(small_spec(tmp_path, input={"transform": "standardize", "equivalent_to": 1})))
    with pytest.raises(SpecError, match=r"arms.X: key 'optim.lrr' is not a spec key"):
        parse_spec(small_spec(tmp_path, arms={"X": {"optim.lrr": 1}}))
    with pytest.raises(SpecError, match="also swept in grid"):
        parse_spec(small_spec(tmp_path, arms={"X": {"optim.lr": 1}}, grid={"optim.lr": [1e-3]}))
    with pytest.raises(SpecError, match=r"arms.X: optim.lr = -1"):
        parse_spec(small_spec(tmp_path, arms={"X": {"optim.lr": -1}}))
    # arms cross the grid
    trials = expand(parse_spec(small_spec(tmp_path, seeds=1, arms={"a": {}, "b": {"optim.lr": 0.1}},
                                          grid={"input.scale": [1, "1/255"]})))
    assert [t.level for t in trials] == [{"arm": a, "input.scale": s} for a in "ab" for s in (1, "1/255")]


def test_cli_equivalence_json_and_errors(capsys):
    assert main(["equivalence", "--input-scale", "4", "--optimizer", "momentum", "--steps", "30",
                 "--dataset", "digits", "--base-scale", "1/16", "--hidden", "8", "--format", "json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["parametrization"]["lr_mult"] == 1 / 16 and r["exact"]["max_loss_diff"] == 0.0
    assert set(r["naive"]) == {"max_loss_diff", "max_w1_diff"}
    with pytest.raises(SystemExit) as e:
        main(["equivalence", "--input-scale", "1/0", "--optimizer", "adam"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--input-scale" in err and "1/255" in err
    assert main(["equivalence", "--input-scale", "0", "--optimizer", "adam", "--dataset", "digits"]) == 2
    assert "must be a finite number > 0" in capsys.readouterr().err
