"""Each probe against a slow, independent computation (numpy, per-sample plain autograd,
the exact Hessian of a tiny model); probes never change training (the explain rules: tests/test_explain_*.py)."""

import math

import numpy as np
import pytest
import torch

from conftest import small_spec
from scalelab import StackedGroup, StepView, expand
from scalelab._spec import parse_spec
from scalelab.probes import PRESETS, PROBES, ProbeSet, make_probe_set, schedule_steps


def group_spec(data_dir, profile="keras", **over):
    return parse_spec(small_spec(data_dir, profile=profile, seeds=[0, 1], train__dtype="float64",
                                 grid={"input.scale": ["1/255", 1]}, **over))


def run_probed(g, names, steps, batch=64):
    """Train ``steps`` steps with the named probes due at every step; keep an independent
    record of each step's batch, parameters before/after and gradients."""
    ps = ProbeSet([PROBES[n]() for n in names], schedule="linear", every=1, batch=batch)
    view, rows = attach(ps, g)
    perm = g.permutations()
    snaps = []
    for s in range(steps):
        idx = perm[:, s * g.batch_size:(s + 1) * g.batch_size]
        before = {k: p.detach().clone() for k, p in g.params.items()}
        loss = hooked_step(ps, view, g, idx)
        snaps.append(dict(idx=idx.clone(), before=before, after={k: p.detach().clone() for k, p in g.params.items()},
                          grads={k: v.clone() for k, v in g.grads.items()}, loss=loss.clone()))
    return ps, rows, snaps


def attach(ps, g):
    """The probe set as the engine's loop runs it: a hook on the group's view."""
    view = StepView(g)
    ps.on_group_start(view)
    return view, [view.records(m) for m in range(g.M)]


def hooked_step(ps, view, g, idx):
    view.batch = idx
    ps.on_step_start(view)
    loss, _, _ = g.train_step(idx)
    view.loss = loss
    ps.on_step_end(view)
    return loss


def values(rows, m, step, probe):
    return {n: v for s, p, n, v in rows[m] if s == step and p == probe}


def np_forward(g, m, params, rows):
    """Model m in numpy float64 on training rows: inputs, pre-activations, activations, logits."""
    x = g.split.X_train[rows].astype(np.float64) * g.in_scale[m].item()
    W0, b0 = params["dense0.W"][m].numpy(), params["dense0.b"][m, 0].numpy()
    W1, b1 = params["dense1.W"][m].numpy(), params["dense1.b"][m, 0].numpy()
    z0 = x @ W0 + b0
    a0 = np.maximum(z0, 0)
    return x, z0, a0, a0 @ W1 + b1


def test_forward_probes_match_numpy(fake_fmnist):
    g = StackedGroup(expand(group_spec(fake_fmnist)), str(fake_fmnist))
    ps, rows, snaps = run_probed(g, ["activations", "logits", "loss"], 5)
    r = ps.probe_rows.numpy()
    y = g.split.y_train[r]
    for step in (0, 4):
        for m in range(g.M):
            x, z0, a0, out = np_forward(g, m, snaps[step]["before"], r)
            v = values(rows, m, step, "activations")
            assert v["pre0.mean"] == pytest.approx(z0.mean(), rel=1e-12)
            assert v["pre0.std"] == pytest.approx(z0.std(ddof=1), rel=1e-12)
            assert v["act0.max_abs"] == pytest.approx(np.abs(a0).max(), rel=1e-12)
            assert v["act0.dead_frac"] == pytest.approx(np.mean((a0 == 0).all(axis=0)))
            lv = values(rows, m, step, "logits")
            e = np.exp(out - out.max(1, keepdims=True))
            p = e / e.sum(1, keepdims=True)
            pt = p[np.arange(len(y)), y]
            assert lv["max_abs"] == pytest.approx(np.abs(out).max(), rel=1e-12)
            assert lv["median_range"] == pytest.approx(np.median(out.max(1) - out.min(1)), rel=1e-9)
            assert lv["p_true_below_clip"] == pytest.approx(np.mean(pt < 1e-7))
            pred = out.argmax(1)
            shares = np.bincount(pred, minlength=10) / len(pred)
            assert [lv[f"pred_share.{c}"] for c in range(10)] == pytest.approx(list(shares))
            top = np.sort(shares)[::-1]
            assert lv["classes_for_95pct"] == np.searchsorted(np.cumsum(top), 0.95 - 1e-9) + 1
            loss = -np.log(np.clip(pt, 1e-7, 1 - 1e-7)).mean()
            assert values(rows, m, step, "loss")["probe_batch"] == pytest.approx(loss, rel=1e-12)
            assert values(rows, m, step, "loss")["batch"] == float(snaps[step]["loss"][m])


def test_zero_gradient_share_matches_per_sample_autograd(fake_fmnist):
    # the raw-pixel model (m = 2, 3) has many clipped samples at step 0; /255 (m = 0, 1) none
    g = StackedGroup(expand(group_spec(fake_fmnist)), str(fake_fmnist))
    ps, rows, snaps = run_probed(g, ["zero_grad"], 2, batch=48)
    r = ps.probe_rows.numpy()
    shares = []
    for m in range(g.M):
        params = {k: v[m].clone().requires_grad_() for k, v in snaps[0]["before"].items()}
        x = torch.as_tensor(g.split.X_train[r].astype(np.float64)) * g.in_scale[m].item()
        y = torch.as_tensor(g.split.y_train[r].astype(np.int64))
        zero = 0
        for i in range(len(r)):  # one sample at a time, the plain way
            h = torch.relu(x[i:i + 1] @ params["dense0.W"] + params["dense0.b"])
            p = torch.softmax(h @ params["dense1.W"] + params["dense1.b"], -1)[0]
            loss = -torch.log(torch.clamp(p[y[i]] / p.sum(), 1e-7, 1 - 1e-7))
            grads = torch.autograd.grad(loss, list(params.values()))
            zero += all(bool((gr == 0).all()) for gr in grads)
        shares.append(zero / len(r))
        assert values(rows, m, 0, "zero_grad")["share"] == pytest.approx(shares[-1])
    assert shares[2] > 0.3 and shares[0] < 0.05  # the case is not trivial


def test_gradient_update_and_preactivation_probes(fake_fmnist):
    g = StackedGroup(expand(group_spec(fake_fmnist, profile="torch")), str(fake_fmnist))
    ps, rows, snaps = run_probed(g, ["gradients", "update", "preact_step"], 3)
    r = ps.probe_rows.numpy()
    for step in (0, 2):
        sn = snaps[step]
        for m in range(g.M):
            # gradient of model m's own batch loss, plain autograd on a fresh copy
            params = {k: v[m].clone().requires_grad_() for k, v in sn["before"].items()}
            rows_m = sn["idx"][m].numpy()
            x = torch.as_tensor(g.split.X_train[rows_m].astype(np.float64)) * g.in_scale[m].item()
            h = torch.relu(x @ params["dense0.W"] + params["dense0.b"])
            loss = torch.nn.functional.cross_entropy(h @ params["dense1.W"] + params["dense1.b"],
                                                     torch.as_tensor(g.split.y_train[rows_m].astype(np.int64)))
            grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
            gv = values(rows, m, step, "gradients")
            for k in params:
                assert gv[f"{k}.norm"] == pytest.approx(float(grads[k].norm()), rel=1e-10)
            assert gv["total.norm"] == pytest.approx(math.sqrt(sum(float(v.norm()) ** 2 for v in grads.values())),
                                                     rel=1e-10)
            uv = values(rows, m, step, "update")
            for k in params:
                d = (sn["after"][k][m] - sn["before"][k][m]).numpy()
                assert uv[f"{k}.ratio"] == pytest.approx(np.linalg.norm(d) / np.linalg.norm(sn["before"][k][m]),
                                                         rel=1e-10)
            x, z0, a0, out = np_forward(g, m, sn["before"], r)
            dz0 = x @ (sn["after"]["dense0.W"][m] - sn["before"]["dense0.W"][m]).numpy() + \
                (sn["after"]["dense0.b"][m, 0] - sn["before"]["dense0.b"][m, 0]).numpy()
            dz1 = a0 @ (sn["after"]["dense1.W"][m] - sn["before"]["dense1.W"][m]).numpy() + \
                (sn["after"]["dense1.b"][m, 0] - sn["before"]["dense1.b"][m, 0]).numpy()
            pv = values(rows, m, step, "preact_step")
            assert pv["pre0.rms_change"] == pytest.approx(np.sqrt(np.mean(dz0 ** 2)), rel=1e-10)
            assert pv["pre0.rel_change"] == pytest.approx(np.sqrt(np.mean(dz0 ** 2) / np.mean(z0 ** 2)), rel=1e-10)
            assert pv["pre1.rms_change"] == pytest.approx(np.sqrt(np.mean(dz1 ** 2)), rel=1e-10)


@pytest.mark.parametrize("profile", ["torch", "keras"])
def test_adam_eps_share_from_a_hand_recurrence(fake_fmnist, profile):
    g = StackedGroup(expand(group_spec(fake_fmnist, profile=profile)), str(fake_fmnist))
    ps, rows, snaps = run_probed(g, ["adam_eps"], 6)
    eps = 1e-8 if profile == "torch" else 1e-7
    for m in range(g.M):
        v = {k: np.zeros_like(g.grads[k][m].numpy()) for k in g.grads}
        for t, sn in enumerate(snaps, start=1):
            for k in v:
                v[k] = 0.999 * v[k] + 0.001 * sn["grads"][k][m].numpy() ** 2
            if t in (1, 6):
                for k in v:
                    # torch: sqrt(v / (1 - b2^t)) + eps; Keras: sqrt(v) + eps
                    root = np.sqrt(v[k] / (1 - 0.999 ** t)) if profile == "torch" else np.sqrt(v[k])
                    got = values(rows, m, t - 1, "adam_eps")
                    assert got[f"{k}.eps_share_median"] == pytest.approx(np.median(eps / (root + eps)), rel=1e-9)
                    assert got[f"{k}.eps_dominated_frac"] == pytest.approx(np.mean(eps > root))


def test_hessian_extreme_eigenvalues_equal_exact_hessian(tmp_path):
    spec = parse_spec({"name": "h", "profile": "torch", "seeds": [0, 3], "data": {"dataset": "iris"},
                       "input": {"transform": "standardize"}, "model": {"hidden": [5], "activation": "tanh"},
                       "train": {"dtype": "float64", "batch_size": 16, "epochs": 1}})
    g = StackedGroup(expand(spec), None)
    probe = PROBES["hessian"](batch=40, iters=300)
    ps = ProbeSet([probe], schedule="linear", every=1, batch=40)
    view, rows = attach(ps, g)
    view.batch = g.permutations()[:, :16]
    ps.on_step_start(view)
    r = ps.probe_rows
    for m in range(g.M):
        names = list(g.params)
        shapes = [g.params[k][m].shape for k in names]
        sizes = [math.prod(s) for s in shapes]
        x = g.inputs(g.X_train, r.expand(1, -1))[0]
        y = g.y_train[r]

        def loss_of(flat):
            ps_ = dict(zip(names, (t.view(s) for t, s in zip(flat.split(sizes), shapes))))
            h = torch.tanh(x @ ps_["dense0.W"] + ps_["dense0.b"])
            return torch.nn.functional.cross_entropy(h @ ps_["dense1.W"] + ps_["dense1.b"], y)

        flat = torch.cat([g.params[k][m].detach().reshape(-1) for k in names])
        H = torch.autograd.functional.hessian(loss_of, flat)
        eig = torch.linalg.eigvalsh(H)
        got = values(rows, m, 0, "hessian")
        lo, hi = float(eig[0]), float(eig[-1])
        dominant, other = ("max_eigenvalue", "min_eigenvalue") if abs(hi) >= abs(lo) else ("min_eigenvalue",
                                                                                          "max_eigenvalue")
        exact = {"max_eigenvalue": hi, "min_eigenvalue": lo}
        assert got[dominant] == pytest.approx(exact[dominant], rel=1e-6)
        # the other end comes from the shifted iteration, inside the spectrum and close to its end
        assert lo - 1e-9 <= got[other] <= hi + 1e-9
        assert abs(got[other] - exact[other]) <= 1e-2 * (hi - lo)


def test_probes_never_change_training(fake_fmnist):
    trials = expand(group_spec(fake_fmnist))
    plain = StackedGroup(trials, str(fake_fmnist))
    probed = StackedGroup(trials, str(fake_fmnist))
    ps = ProbeSet([PROBES[n]() for n in PRESETS["full"]], schedule="linear", every=1, batch=64)
    view, rows = attach(ps, probed)
    for epoch in range(2):
        p1, p2 = plain.permutations(), probed.permutations()
        assert torch.equal(p1, p2)
        for s in range(6):
            idx = p1[:, s * 32:(s + 1) * 32]
            a, _, _ = plain.train_step(idx)
            b = hooked_step(ps, view, probed, idx)
            assert torch.equal(a, b)
    for k in plain.params:
        assert torch.equal(plain.params[k], probed.params[k])
    # every probe of the preset recorded, but saturation (ReLU units do not saturate)
    assert {p for row in rows for _, p, _, _ in row} == set(PRESETS["full"]) - {"saturation"}


def test_schedule_steps():
    s = schedule_steps(9375)
    assert s[0] == 0 and s[-1] == 9375 and s == sorted(set(s))
    # log spacing: about 8 per decade, each decade represented
    for lo, hi in ((1, 10), (10, 100), (100, 1000), (1000, 9375)):
        assert 5 <= sum(lo <= x < hi for x in s) <= 9
    assert schedule_steps(250, "linear", every=100) == [0, 100, 200, 250]
    with pytest.raises(ValueError, match="'log' or 'linear'"):
        schedule_steps(10, "cubic")


def test_make_probe_set_errors(fake_fmnist):
    trials = expand(group_spec(fake_fmnist, probes={"preset": "cheap", "only": ["logitz"]}))
    with pytest.raises(ValueError, match="unknown probe 'logitz'; probes are: loss"):
        make_probe_set(trials)


def test_each_probe_runs_on_its_own_schedule(fake_fmnist):
    from scalelab import train_group

    trials = expand(group_spec(fake_fmnist, probes={"preset": "full", "points_per_decade": 6}))
    res = train_group(trials, str(fake_fmnist), probes=make_probe_set(trials))
    steps = lambda probe: sorted({s for s, p, _, _ in res[0].probes if p == probe})  # noqa: E731
    total = 2 * math.ceil(500 / 32)
    assert steps("logits") == schedule_steps(total, "log", 6)
    assert steps("hessian") == schedule_steps(total, "log", 3) and len(steps("hessian")) < len(steps("logits"))
    assert steps("update") == [s for s in schedule_steps(total, "log", 6) if s < total]  # no update after the last


@pytest.mark.parametrize("n", [1, 2, 7, 10, 4096, 5001])   # from 4096 entries on a CPU: numpy's selection
def test_median_matches_numpy(n):
    from scalelab.probes._base import median

    x = np.random.default_rng(n).normal(size=(3, n)).round(1)  # rounding makes ties
    np.testing.assert_allclose(median(torch.tensor(x)).numpy(), np.median(x, axis=1), rtol=1e-15)
    t = torch.tensor(x, dtype=torch.float32)
    for _ in range(2):   # bit for bit the mean of torch's own two middle values; then with a NaN (torch's own)
        hi = t.kthvalue(n // 2 + 1, dim=1).values
        ref = hi if n % 2 else 0.5 * (t.kthvalue(n // 2, dim=1).values + hi)
        assert torch.allclose(median(t), ref, rtol=0, atol=0, equal_nan=True)
        t[1, 0] = float("nan")


def test_shifted_power_iteration_on_a_known_spectrum():
    """A dominant negative eigenvalue: plain power iteration finds it, the shifted one the
    largest positive; both reported separately (models stacked: each its own spectrum)."""
    from scalelab.probes._hessian import extreme_eigenvalues

    rng = np.random.default_rng(0)
    spectra = [[-10.0, -1.0, 0.0, 0.5, 2.0, 3.0], [-4.0, 0.1, 1.0, 1.5, 7.0, 8.0], [1.0, 2.0, 2.0, 3.0, 4.0, 6.0]]
    mats = []
    for eig in spectra:
        q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
        mats.append(q @ np.diag(eig) @ q.T)
    A = torch.tensor(np.stack(mats))                                     # (M, 6, 6)
    hi, lo = extreme_eigenvalues(lambda v: [A @ v[0]], [torch.zeros(3, 6, 1, dtype=torch.float64)], iters=300)
    assert hi.tolist() == pytest.approx([3.0, 8.0, 6.0], rel=1e-6)
    assert lo.tolist() == pytest.approx([-10.0, -4.0, 1.0], rel=1e-6)
