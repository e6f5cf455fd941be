"""Multimodal trajectories (issue 19): the metrics against hand computations, the generator's
branch frequencies against its parameters, user files, the grid softmax's normalisation,
the encoder–decoder against torch.nn.LSTM per model, mode averaging of the deterministic
baseline, and the metrics' way into the store and `show --format json`."""

import json
import math

import numpy as np
import pytest
import torch

from scalelab import StackedGroup, expand
from scalelab.data import DataError
from scalelab._spec import parse_spec
from scalelab.models import Pass
from scalelab.trajectories import (JUNCTION_TYPES, Cvae, Seq2Seq, empirical_branch_frequencies, load_trajectory_file,
                                   make_trajectories)
from scalelab.trajectories import _metrics as mt
from test_lstm import _torch_lstm   # torch.nn.LSTM holding one model's parameters


def _spec(loss="trajectory_mse", epochs=1, n=600, coords="standardize", seeds=1, **traj):
    d = dict(name="t", profile="keras", seeds=seeds,
             data=dict(dataset="trajectories", n_samples=n, validation=100),
             trajectory={**dict(n_test=200, units=16, grid_size=10), **traj},
             model=dict(kind="trajectory"), loss=dict(name=loss),
             input=dict(transform=coords, per_feature=False), target=dict(transform=coords, per_feature=False),
             optim=dict(name="adam", lr=0.01), train=dict(batch_size=64, epochs=epochs))
    return parse_spec(d)


# ----------------------------------------------------------------------------- metrics by hand

def test_ade_fde_and_their_best_of_k_by_hand():
    y = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    pred = np.array([[0.0, 1.0], [1.0, 1.0], [5.0, 4.0]])        # distances 1, 1, 5
    assert mt.ade(pred, y) == pytest.approx(7 / 3)
    assert mt.fde(pred, y) == pytest.approx(5.0)
    samples = np.stack([pred, y + [[0, 0], [0, 0], [0, 2]]])      # the second: distances 0, 0, 2
    assert mt.min_ade(samples, y) == pytest.approx(2 / 3)
    assert mt.min_fde(samples, y) == pytest.approx(2.0)
    # best of K picks per input, not over the batch
    both = np.stack([samples, samples[::-1]])                     # (2 inputs, K=2, T, 2)
    assert np.allclose(mt.min_fde(both, np.stack([y, y])), [2.0, 2.0])


def test_grid_cells_density_and_nll_by_hand():
    # box [0, 10]², 2 × 2 cells of area 25, flat index = row (y) · 2 + column (x)
    assert mt.cell_index(np.array([[7.0, 2.0], [2.0, 7.0], [-3.0, 12.0]]), 0, 10, 2).tolist() == [1, 2, 2]
    uniform = np.full((1, 4), 0.25)
    assert mt.grid_nll(uniform, np.array([3]), 0, 10, 2)[0] == pytest.approx(math.log(100))   # density 0.25 / 25
    # a point mass on cell 0 mixed with 1 % of the uniform: the missed cell costs −log(0.01/4 / 25)
    p = mt.normalise(np.array([[1.0, 0, 0, 0]]))
    assert p.sum() == pytest.approx(1.0)
    assert mt.grid_nll(p, np.array([1]), 0, 10, 2)[0] == pytest.approx(-math.log(0.01 / 4 / 25))
    assert mt.grid_nll(p, np.array([0]), 0, 10, 2)[0] == pytest.approx(-math.log((0.99 + 0.0025) / 25))
    # a Gaussian at the box's centre gives each quadrant a quarter; far inside one cell, all of it
    q = mt.gaussian_cell_probs(np.array([5.0, 5.0]), np.array([1.0, 3.0]), 0, 10, 2)
    from scipy.stats import norm
    ax = norm.cdf(10, 5, 1) - norm.cdf(5, 5, 1)
    ay = norm.cdf(10, 5, 3) - norm.cdf(5, 5, 3)
    assert np.allclose(q, ax * ay)
    assert mt.gaussian_cell_probs(np.array([2.5, 7.5]), np.array([0.01, 0.01]), 0, 10, 2) == pytest.approx([0, 0, 1, 0])
    # samples: 3 of 4 in cell 3, 1 in cell 0
    h = mt.histogram_cell_probs(np.array([[9.0, 9.0], [6.0, 6.0], [7.0, 8.0], [1.0, 1.0]]), 0, 10, 2)
    assert h.tolist() == [0.25, 0, 0, 0.75]


def test_branches_sectors_recovery_and_distance_by_hand():
    c, u = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])          # a junction at the origin, heading east
    pts = np.array([[5.0, 0.5], [0.5, 5.0], [0.2, -5.0], [-5.0, 0.1]])[:, None]   # (4 points, n=1, 2)
    assert mt.sector(pts, c, u)[:, 0].tolist() == [1, 0, 2, 3]     # straight, left, right, back
    assert mt.sector(np.array([[[0.0, 5.0]]]), c, np.array([[0.0, 1.0]]))[0, 0] == 1   # heading north: straight
    # masses of 2 samples' final positions; types 0 and 1; truth per type
    final = np.array([[[[0.0, 5.0], [5.0, 0.0]], [[0.0, -5.0], [0.0, -6.0]]]])   # (M=1, n=2, S=2, 2)
    mass = mt.branch_mass_from_points(final, np.zeros((2, 2)), np.array([[1.0, 0], [1.0, 0]]))
    assert mass[0].tolist() == [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    per, err = mt.branch_recovery(mass, np.array([0, 1]), np.array([[0.5, 0.3, 0.2], [0.7, 0.0, 0.3]]))
    assert per[0].tolist() == [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    assert err[0] == pytest.approx(0.7)                             # type 1, left: 0 vs 0.7
    # branch ends of one sample: left (0, 10), straight (10, 0), right (0, -10); a tee has no straight one
    ends = np.array([[[0.0, 10.0], [10.0, 0.0], [0.0, -10.0]]])
    assert mt.distance_to_branches(np.array([[3.0, 3.0]]), ends, np.array([[True, True, True]]))[0] == \
        pytest.approx(math.hypot(7, 3))
    assert mt.distance_to_branches(np.array([[[8.0, 0.0]], [[0.0, 0.0]]]), ends, np.array([[True, False, True]]))[:, 0] \
        == pytest.approx([math.hypot(8, 10), 10.0])
    cells = mt.branch_mass_from_cells(np.full((1, 1, 4), 0.25), np.array([[5.0, 5.0]]), u, 0, 10, 2)
    # cell centres at ±45° ahead are on the straight sector's edges (counted straight); ±135°: left, right
    assert cells[0, 0].tolist() == [0.25, 0.5, 0.25]


# ----------------------------------------------------------------------------- the generator

def test_generator_branch_frequencies_match_its_probabilities_within_binomial_tolerance():
    ds = make_trajectories(n_train=30_000, n_test=10, seed=3)
    meta = ds.meta["trajectory"]
    tmap, info = meta["map"], meta["train"]
    freq = empirical_branch_frequencies(info, len(tmap.junction_types))
    for j, jt in enumerate(tmap.junction_types):
        p = tmap.type_probs(jt)
        n = int((info["type"] == j).sum())
        tol = 4 * np.sqrt(p * (1 - p) / n) + 1e-12                  # 4 binomial standard errors
        assert np.all(np.abs(freq[j] - p) <= tol), (jt, freq[j], p)
    assert tmap.type_probs("cross") == pytest.approx([0.5, 0.3, 0.2])
    assert tmap.type_probs("tee") == pytest.approx([5 / 7, 0, 2 / 7])
    # every path in the box, the junction recovered from the observed path alone
    X = ds.X_train.reshape(-1, 10, 2)
    assert ds.X_train.shape == (30_000, 20) and ds.y_train.shape == (30_000, 12)
    assert X.min() > -2 and X.max() < 102 and ds.y_train.min() > -2 and ds.y_train.max() < 102
    loc = tmap.locate(X)
    assert np.array_equal(loc["type"], info["type"]) and np.allclose(loc["centre"], info["centre"])
    # each future lies on its own branch's path (noise 0.3), not on the others'
    fut = ds.y_train.reshape(-1, 6, 2)
    own = info["branch_futures"][np.arange(len(fut)), info["branch"]]
    assert np.abs(fut - own).max() < 2.0
    again = make_trajectories(n_train=30_000, n_test=10, seed=3)
    assert np.array_equal(again.X_train, ds.X_train) and np.array_equal(again.y_test, ds.y_test)


def test_user_npz_is_checked_with_one_line_per_problem(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(0, 100, (50, 10, 2)), rng.uniform(0, 100, (50, 6, 2))
    good = tmp_path / "ok.npz"
    np.savez(good, X=X, Y=Y)
    ds = load_trajectory_file(str(good))
    assert ds.X_train.shape == (40, 20) and ds.X_test.shape == (10, 20) and ds.y_train.shape == (40, 12)
    cases = {"shape": (dict(X=X[:, :8], Y=Y), "X has shape (50, 8, 2), expected (n, 10, 2)"),
             "missing": (dict(X=X), "no array 'Y'"),
             "nan": (dict(X=X, Y=np.where(np.arange(6)[None, :, None] == 2, np.nan, Y)), "Y[0, 2, 0] is nan"),
             "range": (dict(X=X + 60, Y=Y), "outside the coordinate range [0, 100]"),
             "count": (dict(X=X, Y=Y[:40]), "X has 50 sequences but Y has 40")}
    for name, (arrays, words) in cases.items():
        p = tmp_path / f"{name}.npz"
        np.savez(p, **arrays)
        with pytest.raises(DataError) as e:
            load_trajectory_file(str(p))
        assert words in str(e.value) and "\n" not in str(e.value), (name, str(e.value))


# ----------------------------------------------------------------------------- the grid softmax

@pytest.mark.parametrize("coords", ["none", "standardize"])
def test_grid_softmax_targets_and_nll_integrate_to_one(coords):
    g = StackedGroup(expand(_spec("grid_softmax", coords=coords, n_future=1, grid_size=6)))
    head, G = g.custom_loss, 6
    centres = torch.as_tensor(mt.cell_centres(0, 100, G))[None]                    # (1, G², 2), original units
    y = centres if g.t_scale is None else centres * g.t_scale + g.t_offset          # in training units
    cells = head.cells_of(y)[0, :, 0]
    assert sorted(cells.tolist()) == list(range(G * G))      # one-hot targets: each cell once, mass 1 each
    logits = torch.randn(1, 1, G * G, dtype=g.dtype).expand(1, G * G, -1)
    nll = head.per_sample(logits, y)                                                # (1, G²): −log p(cell)
    assert torch.exp(-nll).sum().item() == pytest.approx(1.0, abs=1e-5)
    # the metrics' grid density of a Gaussian mixture also integrates to 1 over a box holding it
    q = mt.gaussian_cell_probs(np.array([[40.0, 55.0], [60.0, 45.0]]), np.array([[3.0, 5.0], [4.0, 2.0]]), 0, 100, 50)
    assert q.sum(-1) == pytest.approx([1.0, 1.0], abs=1e-9)


# ----------------------------------------------------------------------------- the models

def _params(layer, M, seed=0):
    per = [layer.init(np.random.default_rng([s, 0]), "glorot_uniform", 1.0, "zeros") for s in range(M)]
    rng = np.random.default_rng(seed)   # non-zero skip kernels and biases, so every path is checked
    return {q.name: torch.as_tensor(np.stack([p[q.name] for p in per]) + 0.1 * rng.normal(size=(M, *q.shape)))
            .requires_grad_() for q in layer.params()}


def test_encoder_decoder_equals_torch_nn_lstm_per_model_in_outputs_and_gradients():
    M, B, T_obs, T, H, K = 3, 4, 5, 3, 6, 2
    layer = Seq2Seq(T_obs, T, H, 4 * K, mix=K)
    params = _params(layer, M)
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(M, B, 2 * T_obs)))
    out = layer.forward(params, x, Pass(M))
    w = torch.as_tensor(np.random.default_rng(2).normal(size=out.shape))
    (out * w).sum().backward()
    for m in range(M):
        P = {k: v[m].detach().clone().requires_grad_() for k, v in params.items()}
        enc = _torch_lstm(P["lstm0.W"], P["lstm0.U"], P["lstm0.b"])
        dec = _torch_lstm(P["lstm1.W"], P["lstm1.U"], P["lstm1.b"])
        _, (h, _) = enc(x[m].reshape(B, T_obs, 2))
        h = h[0]
        seq, _ = dec(h[:, None].expand(B, T, H))                         # RepeatVector
        ctx = x[m][:, -4:]
        steps = [seq[:, t] @ P["out.W"] + ctx @ P["out.S"][4 * t: 4 * t + 4] + P["out.b"][t] for t in range(T)]
        logits = torch.cat([h, ctx], 1) @ P["mix.W"] + P["mix.b"]
        ref = torch.cat([logits, torch.cat(steps, 1)], 1)
        assert torch.allclose(out[m], ref, atol=1e-12)
        # gradients through torch.nn's modules: theirs, mapped back to our layout
        (ref * w[m]).sum().backward()
        for net, i in ((enc, 0), (dec, 1)):
            assert torch.allclose(params[f"lstm{i}.W"].grad[m], net.weight_ih_l0.grad.T, atol=1e-10)
            assert torch.allclose(params[f"lstm{i}.U"].grad[m], net.weight_hh_l0.grad.T, atol=1e-10)
            assert torch.allclose(params[f"lstm{i}.b"].grad[m], net.bias_ih_l0.grad.reshape(1, -1), atol=1e-10)
        for k in ("out.W", "out.S", "out.b", "mix.W", "mix.b"):
            assert torch.allclose(params[k].grad[m], P[k].grad, atol=1e-10), k


def test_cvae_posterior_prior_and_kl_per_model_against_torch_nn_lstm():
    M, B, T_obs, T, H, L = 2, 3, 4, 3, 5, 2
    layer = Cvae(T_obs, T, H, L)
    params = {k: v.detach() for k, v in _params(layer, M).items()}
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.normal(size=(M, B, 2 * T_obs)))
    y = torch.as_tensor(rng.normal(size=(M, B, 2 * T)))
    eps = torch.as_tensor(rng.normal(size=(M, B, L)))
    out = layer.forward(params, x, Pass(M, targets=y, noise=lambda shape: eps))
    for m in range(M):
        P = {k: v[m] for k, v in params.items()}
        h = _torch_lstm(P["lstm0.W"], P["lstm0.U"], P["lstm0.b"])(x[m].reshape(B, T_obs, 2))[1][0][0]
        hy = _torch_lstm(P["lstm2.W"], P["lstm2.U"], P["lstm2.b"])(y[m].reshape(B, T, 2))[1][0][0]
        mq, lq = (torch.cat([h, hy], 1) @ P["q.W"] + P["q.b"]).chunk(2, 1)
        mp, lp = (h @ P["prior.W"] + P["prior.b"]).chunk(2, 1)
        z = mq + torch.exp(0.5 * lq) * eps[m]
        q = torch.distributions.Normal(mq, torch.exp(0.5 * lq))
        p = torch.distributions.Normal(mp, torch.exp(0.5 * lp))
        kl = torch.distributions.kl_divergence(q, p).sum(1)
        seq, _ = _torch_lstm(P["lstm1.W"], P["lstm1.U"], P["lstm1.b"])(torch.cat([h, z], 1)[:, None].expand(B, T, H + L))
        path = torch.cat([seq[:, t] @ P["out.W"] + x[m][:, -4:] @ P["out.S"][4 * t: 4 * t + 4] + P["out.b"][t]
                          for t in range(T)], 1)
        assert torch.allclose(out[m, :, :2 * T], path, atol=1e-12)
        assert torch.allclose(out[m, :, 2 * T], kl, atol=1e-12)
    # without targets, z comes from the prior and the KL column is 0
    prior = layer.forward(params, x, Pass(M, noise=lambda shape: eps))
    assert torch.all(prior[..., 2 * T] == 0)


def test_deterministic_baseline_ends_between_the_branches_of_a_symmetric_junction():
    """Mode averaging: with left and right equally likely, MSE learns their mean — a final
    position near the junction's axis, far from both branches the agents take."""
    spec = _spec("trajectory_mse", epochs=6, n=3000, probs=[0.5, 0.0, 0.5], junction_types=["tee"], units=24)
    g = StackedGroup(expand(spec))
    perm = g.permutations
    for _ in range(g.epochs):
        p = perm()
        for s in range(g.steps_per_epoch):
            g.train_step(p[:, s * g.batch_size: (s + 1) * g.batch_size])
    tmap = g.dataset_meta["trajectory"]["map"]
    X = g.X_test.numpy().reshape(-1, 10, 2)
    loc = tmap.locate(X)
    with torch.no_grad():
        idx = torch.arange(len(X))[None]
        final = g.custom_loss.orig_path(g.forward(g.params, g.inputs(g.X_test, idx)))[0, :, -1].numpy()
    d = final - loc["centre"]
    lateral = d[:, 1] * loc["heading"][:, 0] - d[:, 0] * loc["heading"][:, 1]      # left of the heading
    truth = g.y_test.numpy().reshape(-1, 6, 2)[:, -1] - loc["centre"]
    true_lat = np.abs(truth[:, 1] * loc["heading"][:, 0] - truth[:, 0] * loc["heading"][:, 1])
    avail = np.tile(JUNCTION_TYPES["tee"], (len(X), 1))
    ends = g.dataset_meta["trajectory"]["test"]["branch_futures"][:, :, -1]
    dist = mt.distance_to_branches(final, ends, avail)
    own = mt.distance_to_branches(g.y_test.numpy().reshape(-1, 6, 2)[:, -1], ends, avail)
    # between: far nearer the axis than the branches are (|lateral| ≈ 13 for a true future), and
    # many times farther from the nearest branch's end than true futures are (noise ≈ 0.3)
    assert np.median(np.abs(lateral)) < 0.25 * np.median(true_lat)
    assert np.median(dist) > 0.5 * np.median(true_lat) > 10 * np.median(own)


def test_trajectory_metrics_reach_the_store_and_show_json(tmp_path, capsys):
    from scalelab._cli import main

    d = _spec("mdn_nll", epochs=1, n=400, seeds=2, components=2).model_dump(exclude={"grid", "arms", "descriptions"})
    d["name"] = "traj-mini"
    d["grid"] = {"loss.name": ["trajectory_mse", "mdn_nll", "grid_softmax", "cvae_elbo"]}
    d["trajectory"]["density_samples"] = 20
    import scalelab
    db = tmp_path / "s.db"
    sid = scalelab.run_study(parse_spec(d), str(db))
    assert sid
    assert main(["show", "traj-mini", "--db", str(db), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 4
    for r in records:
        for name in ("ade", "fde", "min_ade_20", "min_fde_20", "grid_nll", "branch_abs_error"):
            assert r[name]["mean"] is not None and math.isfinite(r[name]["mean"]), (r["level"], name)
        assert r["min_fde_20"]["mean"] <= r["fde"]["mean"] + 1e-9 or r["level"]["loss.name"] == "grid_softmax"
        assert not any(k.startswith("show.") for k in r)
    # the deterministic model's K samples are its one prediction
    det = next(r for r in records if r["level"]["loss.name"] == "trajectory_mse")
    assert det["min_ade_20"]["mean"] == pytest.approx(det["ade"]["mean"])
    # the report draws the samples and the calibration; explain names the best branch recovery
    from scalelab.report._html import render_html
    from scalelab._store import Store

    with Store(db) as store:
        page = render_html(store, "traj-mini")
    assert "data-plot='trajectory-samples'" in page and "data-plot='branch-calibration'" in page
    assert "minFDE₂₀" in page
    assert main(["explain", "traj-mini", "--db", str(db), "--format", "json"]) == 0
    assert "best-branch-recovery" in {f["id"] for f in json.loads(capsys.readouterr().out)}
    # the same spec and seeds give the same numbers (the CVAE's noise included)
    db2 = tmp_path / "s2.db"
    scalelab.run_study(parse_spec(d), str(db2))
    assert main(["show", "traj-mini", "--db", str(db2), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == records


@pytest.mark.parametrize("loss", ["grid_softmax", "mdn_nll", "cvae_elbo"])
def test_sampled_metrics_do_not_depend_on_the_chunk_size_and_every_row_draws_its_own(loss):
    """Each row's sampling draws come from (trial seed, row): the metrics are the same decoded
    64 or 500 rows at a time, and the same input at rows 0 and 500 (the first row of two
    default chunks) gets different samples (one generator per chunk gave them the same)."""
    from scalelab.trajectories._evaluate import CHUNK, test_metrics

    assert CHUNK == 500
    g = StackedGroup(expand(_spec(loss, n=300, seeds=2, n_test=1000, components=3, density_samples=20)))
    head = g.custom_loss
    with torch.no_grad():
        a, b = test_metrics(head, g.X_test, g.y_test, chunk=64), test_metrics(head, g.X_test, g.y_test)
    for name in ("min_ade_20", "min_fde_20", "grid_nll", "branch_abs_error"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, err_msg=name)
    assert a["min_fde_20"][0] != a["min_fde_20"][1]          # the two seeds draw differently
    with torch.no_grad():
        idx = torch.zeros(g.M, 1, dtype=torch.long)                  # row 0's input, decoded as row 0 and as row 500
        xb, yb = g.inputs(g.X_test, idx), g.targets(g.y_test, idx)
        out = g.forward(g.params, xb, targets=yb)
        s0, s500, again = (head.decode(xb, out, 20, np.array([r]))["samples"] for r in (0, 500, 0))
    assert np.array_equal(s0, again)
    assert not np.allclose(s0, s500)


# ----------------------------------------------------------------------------- explain and report

def _view(level, **final):
    from scalelab._explain import LevelView

    v = LevelView(level=level, spec=None, n_seeds=3)
    v.final = {f"test_{k}": np.asarray(x, dtype=float) for k, x in final.items()}
    return v


def test_mode_averaging_rule_fires_on_planted_averaging_and_not_on_predictions_on_branches():
    from scalelab._explain._trajectories import rule_mode_averaging

    common = dict(branch_distance=[9.0, 10.0, 11.0], truth_branch_distance=[0.38] * 3, fde=[12.0] * 3)
    averaging = _view({"loss.name": "trajectory_mse"}, between_share=[0.9, 0.95, 0.97], **common)
    (f,) = rule_mode_averaging(averaging, averaging)
    assert f.id == "mode-averaging" and f.evidence["between_share"] == pytest.approx(0.95)
    assert "95%" in f.text and "10 units" in f.text
    # just under the majority, and a model whose predictions sit on branches: silent
    assert rule_mode_averaging(_view({}, between_share=[0.5, 0.45, 0.49], **common), averaging) == []
    assert rule_mode_averaging(_view({}, between_share=[0.02, 0.01, 0.03], **common), averaging) == []


def test_best_branch_recovery_names_the_reference_level_and_its_worst_branch():
    from scalelab._explain import reference
    from scalelab._explain._trajectories import rule_best_branch_recovery

    masses = {"branch_mass.cross.left": [0.47, 0.48, 0.46], "true_mass.cross.left": [0.5] * 3,
              "branch_mass.cross.right": [0.21, 0.2, 0.2], "true_mass.cross.right": [0.2] * 3}
    good = _view({"loss.name": "mdn_nll"}, branch_abs_error=[0.03, 0.04, 0.035], **masses)
    bad = _view({"loss.name": "trajectory_mse"}, branch_abs_error=[0.4, 0.5, 0.45], **masses)
    good.peers = bad.peers = [bad, good]
    ref = reference([bad, good])            # ranked by minFDE_20 where the levels have it; here they do not
    (f,) = rule_best_branch_recovery(good, ref)
    assert f.evidence["worst"] == "cross.left" and f.evidence["within_tolerance"]
    assert "0.035" in f.text and "within ±0.05" in f.text
    assert rule_best_branch_recovery(bad, ref) == []
    # the models rank by minFDE_20, a metric they all have, never by their own losses
    good.final["test_min_fde_20"], bad.final["test_min_fde_20"] = np.array([3.0] * 3), np.array([11.0] * 3)
    good.final["test_ade"], bad.final["test_ade"] = np.array([6.0] * 3), np.array([5.0] * 3)
    assert reference([bad, good]) is good
    bad.final["test_min_fde_20"] = np.array([2.0] * 3)
    assert reference([bad, good]) is bad
    off = _view({"loss.name": "grid_softmax"}, branch_abs_error=[0.08, 0.07, 0.09], **masses)
    (g,) = rule_best_branch_recovery(off, off)
    assert not g.evidence["within_tolerance"] and "more than the ±0.05" in g.text


def test_the_optional_section_keeps_existing_trial_keys_and_study_hashes():
    """Keys and hashes as computed before the [trajectory] section existed (main at 0108e55)."""
    import scalelab
    from scalelab._study import spec_hash

    # (batchnorm-regression's keys changed on purpose since: it records the cheap probes now)
    for name, first, last in (("input-scaling", "a62d57b879deb8ce59be", "b2adddf08bd93d010dd7"),):
        trials = expand(scalelab.builtin_spec(name))
        assert (trials[0].key, trials[-1].key) == (first, last)
    assert spec_hash(scalelab.builtin_spec("input-scaling")) == "fb49200ce8c64951"


def test_mismatched_trajectory_specs_fail_before_training_with_one_line():
    from scalelab.engine import check_trials

    for change, words in ((dict(loss=dict(name="mse")), "set loss.name to one of"),
                          (dict(model=dict(kind="mlp")), "set model.kind = 'trajectory'")):
        d = _spec().model_dump(exclude={"grid", "arms", "descriptions"})
        for k, v in change.items():
            d[k].update(v)
        with pytest.raises(ValueError) as e:
            check_trials(expand(parse_spec(d)))
        assert words in str(e.value) and "\n" not in str(e.value)
