"""A user's trajectory file (issue 33): its X_test/Y_test are the test set (and it says so),
the grid box is inferred from the data (and printed), the measures that need no true
branches (distinct modes, spread calibration) against hand computations, and the report
draws the file's test tracks with sampled futures."""

import math

import numpy as np
import pytest

import scalelab
from scalelab import Store, run_study
from scalelab.data import DataError
from scalelab.trajectories import load_trajectory_file
from scalelab.trajectories import _metrics as mt


def planted_tracks(n, rng, origin=1000.0):
    """Agents moving +x at 1 unit per step from [origin, origin + 50]²; after the 10 observed
    steps each goes straight or turns to +y (probability 1/2 each) for 6 steps."""
    start = origin + rng.uniform(0, 50, (n, 2))
    t = np.arange(16)[None, :, None]
    path = start[:, None, :] + t * np.array([1.0, 0.0])
    turn = rng.random(n) < 0.5
    after = np.arange(1, 7)[None, :, None] * np.array([0.0, 1.0]) - np.arange(1, 7)[None, :, None] * np.array([1.0, 0])
    path[turn, 10:] += after[0]
    path += rng.normal(0, 0.05, path.shape)
    return path[:, :10], path[:, 10:]


def test_file_test_set_and_inferred_box_are_used_and_said(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, Y = planted_tracks(300, rng)
    Xt, Yt = planted_tracks(37, rng)
    f = tmp_path / "tracks.npz"
    np.savez(f, X=X, Y=Y, X_test=Xt, Y_test=Yt)
    spec = {"name": "mine", "profile": "keras", "seeds": 1,
            "data": {"dataset": "trajectories", "path": str(f), "validation": 50},
            "trajectory": {"units": 16, "grid_size": 10, "components": 2, "density_samples": 20},
            "model": {"kind": "trajectory"}, "grid": {"loss.name": ["trajectory_mse", "mdn_nll"]},
            "input": {"transform": "standardize", "per_feature": False},
            "target": {"transform": "standardize", "per_feature": False},
            "optim": {"name": "adam", "lr": 0.01}, "train": {"batch_size": 64, "epochs": 2, "keep": "final"}}
    db = tmp_path / "m.db"
    run_study(spec, db)
    err = capsys.readouterr().err
    lo, hi = min(X.min(), Y.min(), Xt.min(), Yt.min()), max(X.max(), Y.max(), Xt.max(), Yt.max())
    pad = 0.05 * (hi - lo)
    said = [line for line in err.splitlines() if "tracks.npz" in line]
    assert len(said) == 1, err                                       # once, however often the data are loaded
    assert "test set: the file's X_test/Y_test (37 sequences), training on all 300 of X/Y" in said[0]
    assert f"grid box [{lo - pad:.4g}, {hi + pad:.4g}]² inferred from the data" in said[0]
    with Store(db, readonly=True) as s:
        trials = s.trials(s.require_study("mine")["id"])
        finals = {t["spec"]["loss"]["name"]: (t, s.epochs(t["id"])[-1]) for t in trials}
    for loss, (t, last) in finals.items():
        m = scalelab.load("mine", t["id"], db=db)
        Xs, Ys = m.test_inputs()
        assert np.array_equal(Xs, Xt.reshape(37, 20)) and np.array_equal(Ys, Yt.reshape(37, 12))   # the file's
        assert (m.head.lo, m.head.hi) == pytest.approx((lo - pad, hi + pad))
        Y32 = Yt.astype(np.float32).astype(np.float64)
        assert mt.ade(m.predict(Xt), Y32).mean() == pytest.approx(last["test_ade"], rel=1e-12)
        assert math.isfinite(last["test_min_fde_20"]) and math.isfinite(last["test_grid_nll"])
    det, mdn = finals["trajectory_mse"][1], finals["mdn_nll"][1]
    assert det["test_modes"] == 1.0 and math.isnan(det["test_spread_skill"])   # one future, no spread
    assert 1.0 <= mdn["test_modes"] <= 20 and mdn["test_spread_skill"] > 0
    # ranked by what both models have (validation minFDE_20), never by their own losses
    from scalelab.report._answers import answers

    with Store(db, readonly=True) as store:
        said, _ = answers(store, "mine")
    best = said[0]
    assert best.best and best.metric == "validation minFDE_20"
    vals = {loss: last["val_min_fde_20"] for loss, (_, last) in finals.items()}
    assert best.level["loss.name"] == min(vals, key=vals.get) and best.value == pytest.approx(min(vals.values()))
    assert "minimize different losses, mdn_nll, trajectory_mse, which do not compare" in best.text
    from scalelab.report._html import render_html

    with Store(db) as store:
        page = render_html(store, "mine")
    assert "data-plot='trajectory-samples'" in page and "test track 0" in page


def test_file_problems_are_one_line_and_an_explicit_box_is_checked(tmp_path):
    rng = np.random.default_rng(1)
    X, Y = planted_tracks(20, rng)
    p = tmp_path / "half.npz"
    np.savez(p, X=X, Y=Y, X_test=X[:3])
    with pytest.raises(DataError, match=r"it has X_test but no Y_test; give both"):
        load_trajectory_file(str(p), infer_range=True)
    p = tmp_path / "far.npz"
    np.savez(p, X=X, Y=Y)
    with pytest.raises(DataError, match=r"outside the coordinate range \[0, 100\].*infer_range = true"):
        load_trajectory_file(str(p), say=lambda line: None)
    lines = []
    ds = load_trajectory_file(str(p), infer_range=True, say=lines.append)
    assert "a seeded 20% of X/Y (4 sequences; add X_test and Y_test" in lines[0]
    assert ds.X_test.shape == (4, 20) and ds.meta["trajectory"]["range_source"] == "data"


def test_distinct_modes_by_hand():
    r = 1.0
    two = np.array([[0, 0], [0.5, 0], [10, 0], [10.4, 0.3]], float)      # two groups of two
    chain = np.array([[0, 0], [0.9, 0], [1.8, 0], [2.7, 0]], float)      # linked step by step: one group
    apart = np.array([[0, 0], [3, 0], [6, 0], [9, 0]], float)            # four singletons
    got = mt.distinct_modes(np.stack([two, chain, apart]), r)
    assert got.tolist() == [2.0, 1.0, 4.0]
    X = np.zeros((3, 4, 2))
    X[:, :, 0] = np.arange(4) * np.array([[1.0], [2.0], [3.0]])           # steps of 1, 2, 3: median 2
    assert mt.mode_radius(X, 6) == 2 * 6 / 4


def test_spread_skill_is_one_when_calibrated_and_two_when_half_as_wide():
    rng = np.random.default_rng(3)
    n, K = 20000, 20
    centre = rng.normal(0, 5, (n, 2))
    truth = centre + rng.normal(0, 1.0, (n, 2))
    calibrated = centre[:, None] + rng.normal(0, 1.0, (n, K, 2))
    narrow = centre[:, None] + rng.normal(0, 0.5, (n, K, 2))
    for samples, want in ((calibrated, 1.0), (narrow, 2.0)):
        err2, spread2 = mt.spread_terms(samples, truth)
        assert mt.spread_skill(err2, spread2, K) == pytest.approx(want, rel=0.02)
    e2, s2 = mt.spread_terms(np.repeat(centre[:, None], K, 1), truth)
    assert np.isnan(mt.spread_skill(e2, s2, K))
