"""Issue 17: cross-validated studies. Folds (stratified, deterministic, disjoint), planted
leaks, the variance decomposition against simulated two-way tables, L1 in the engine
against scikit-learn, the seed ensemble of identical seeds, the generator's Bayes accuracy,
user tables' errors, the findings on planted tables, and a small study end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import requires_real
from scalelab._cli import main
from scalelab.data import DataError
from scalelab.data import _folds
from scalelab.data._folds import LeakError, check_fitted_on, make_plan
from scalelab.data._pn import bayes_accuracy, make_pn_classification
from scalelab._spec import StudySpec, expand
from scalelab._spec._cv import CVSpec
from scalelab._spec._sections import DataSpec
from scalelab._store import Store
from scalelab._explain._decompose import decompose

SMALL_GEN = {"n": 60, "p": 40, "informative": 10, "block": 5, "rho": 0.3, "class_sep": 1.0}


def tiny_spec(**over) -> dict:
    d = {"name": "tiny-cv", "seeds": 4,
         "data": {"dataset": "pn-synthetic", "generator": dict(SMALL_GEN)},
         "model": {"hidden": [12]}, "train": {"batch_size": 32, "epochs": 8},
         "cv": {"folds": 3, "inner_folds": 2, "inner_seeds": 2},
         "arms": {"network": {},
                  "l2": {"cv.select": "optim.l2", "cv.values": [1e-4, 1e-1]},
                  "pca": {"cv.select": "cv.pca", "cv.values": [3, 50]},
                  "ensemble": {"cv.estimator": "ensemble", "cv.ensemble": 2},
                  "svm": {"cv.estimator": "svm-rbf", "cv.select": "cv.C", "cv.values": [0.1, 10]}}}
    d.update(over)
    return d


# ----------------------------------------------------------------------------- folds

def test_folds_are_stratified_deterministic_and_disjoint():
    data = DataSpec.model_validate({"dataset": "pn-synthetic", "generator": {**SMALL_GEN, "n": 103, "balance": 0.3}})
    cv = CVSpec(folds=5, repeats=3, inner_folds=3)
    plan = make_plan(data, cv)
    _folds._PLANS.clear()
    again = make_plan(data, cv)
    assert plan is not again
    X, y = plan.rows(0)
    share = y.mean()
    for r in range(3):
        seen = np.zeros(len(y), int)
        for f, (tr, va) in enumerate(plan.outer(r)):
            assert not set(tr) & set(va)
            assert len(tr) + len(va) == len(y)
            # stratified: each fold's class-1 count is within one row of its share
            assert abs(y[va].sum() - share * len(va)) <= 1
            seen[va] += 1
            np.testing.assert_array_equal(va, again.outer(r)[f][1])   # deterministic
            for itr, iva in plan.inner(r, f):
                assert set(itr) | set(iva) == set(tr) and not set(itr) & set(iva)
                assert not set(iva) & set(va)
                assert abs(y[iva].sum() - y[tr].mean() * len(iva)) <= 1
        assert (seen == 1).all()
    # repeats shuffle differently; the test rows are none of the development rows
    assert not np.array_equal(plan.outer(0)[0][1], plan.outer(1)[0][1])
    full, _ = make_pn_classification(n=103, seed=0, **{k: v for k, v in SMALL_GEN.items() if k != "n"}, balance=0.3)
    dev_rows = {r.tobytes() for r in X}
    assert not any(r.tobytes() in dev_rows for r in plan.X_test)
    assert len(plan.X_test) + len(X) == 103


def test_a_label_copied_into_a_test_feature_fails_the_study(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), np.tile([0, 1], 20)
    Xt, yt = rng.normal(size=(10, 6)), np.tile([0, 1], 5)
    Xt[:, 4] = yt                                          # planted: the label, on the test rows only
    np.savez(tmp_path / "leak.npz", X=X, y=y, X_test=Xt, y_test=yt)
    spec = tiny_spec(data={"dataset": "file", "path": str(tmp_path / "leak.npz")}, arms={"network": {}})
    with pytest.raises(LeakError, match=r"leak: feature 4 equals the label on all 10 scored rows of the test set "
                                        r"but not on the fitted rows"):
        from scalelab import run_study

        run_study(spec, tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:   # nothing trained
        assert store.trials(store.latest_study("tiny-cv")["id"]) == []


def test_pca_fitted_on_all_rows_fails_the_study(tmp_path, monkeypatch):
    spec = tiny_spec(arms={"pca": {"cv.pca": 3}})
    fair = _folds.fit_pca

    def leaky(X_fit, k):   # planted: the PCA sees every development row, held-out ones included
        plan = next(iter(_folds._PLANS.values()))
        return fair(plan.rows(0)[0], k)

    _folds._PLANS.clear()
    _folds._SPLITS.clear()
    _folds._PCAS.clear()
    monkeypatch.setattr(_folds, "fit_pca", leaky)
    from scalelab import run_study

    with pytest.raises(LeakError, match=r"leak: the PCA of repeat 0 fold 0 was fitted on 48 rows, not on its 32 "
                                        r"training rows only"):
        run_study(spec, tmp_path / "s.db")
    monkeypatch.setattr(_folds, "fit_pca", fair)
    _folds._SPLITS.clear()
    _folds._PCAS.clear()
    Xf = np.random.default_rng(1).normal(size=(30, 8))
    check_fitted_on(fair(Xf, 3), Xf, "a fold")   # the fair one passes


# ----------------------------------------------------------------------------- decomposition

def _expected_ms(S, K, s_seed, s_split, s_res):
    return dict(seed=s_res ** 2 + K * s_seed ** 2, split=s_res ** 2 + S * s_split ** 2, res=s_res ** 2)


@pytest.mark.parametrize("sds", [(0.02, 0.05, 0.04), (0.06, 0.0, 0.03), (0.0, 0.03, 0.06)])
def test_decomposition_recovers_simulated_components(sds):
    """a_sk = μ + α_s + β_k + ε_sk with known σ's: each estimate lies within 4 standard errors
    of the truth, the errors taken from the mean squares' sampling distribution
    (Var MS = 2 E[MS]² / df for normal effects), and the mean of many estimates is unbiased."""
    S, K, (s_seed, s_split, s_res) = 20, 30, sds
    E = _expected_ms(S, K, *sds)
    df_seed, df_split, df_res = S - 1, K - 1, (S - 1) * (K - 1)
    se_split = math.sqrt(2 / S ** 2 * (E["split"] ** 2 / df_split + E["res"] ** 2 / df_res))
    se_seed_main = math.sqrt(2 / K ** 2 * (E["seed"] ** 2 / df_seed + E["res"] ** 2 / df_res))
    se_res = math.sqrt(2 * E["res"] ** 2 / df_res)
    rng = np.random.default_rng(7)
    ests = []
    for _ in range(200):
        A = (0.8 + s_seed * rng.normal(size=(S, 1)) + s_split * rng.normal(size=(1, K))
             + s_res * rng.normal(size=(S, K)))
        d = decompose(A)
        ests.append(((d["ms_split"] - d["ms_res"]) / S, (d["ms_seed"] - d["ms_res"]) / K, d["ms_res"]))
    ests = np.array(ests)
    d = decompose(A)   # one table: within 4 standard errors (the truncation at 0 only moves it closer)
    assert abs(d["var_split"] - s_split ** 2) < 4 * se_split
    assert abs(d["var_seed_main"] - s_seed ** 2) < 4 * se_seed_main
    assert abs(d["var_res"] - s_res ** 2) < 4 * se_res
    # the untruncated moment estimates are unbiased: their mean over 200 tables is within 4 SE/√200
    for j, (truth, se) in enumerate([(s_split ** 2, se_split), (s_seed ** 2, se_seed_main), (s_res ** 2, se_res)]):
        assert abs(ests[:, j].mean() - truth) < 4 * se / math.sqrt(200)
    # the shares: the seed part is σ²_seed + σ²_res (what a rerun on one split sees)
    assert d["var_seed"] == pytest.approx(d["var_seed_main"] + d["var_res"])
    assert d["seed_share"] + d["split_share"] == pytest.approx(1.0)


def test_decomposition_of_a_deterministic_estimator_is_all_split():
    d = decompose([[0.7, 0.8, 0.9, 0.75]])
    assert d["var_seed"] == 0 and d["var_split"] == pytest.approx(np.var([0.7, 0.8, 0.9, 0.75], ddof=1))
    half = stats.t.ppf(0.975, 3) * math.sqrt(d["var_split"] / 4)
    assert d["ci95"] == pytest.approx([d["mean"] - half, d["mean"] + half])


# ----------------------------------------------------------------------------- L1 and ensembles

def test_l1_proximal_step_matches_sklearn_l1_logistic_regression(tmp_path):
    """Convex case: a linear softmax model with L1 on its kernel, full-batch SGD + the
    proximal step (ISTA) in float64, against scikit-learn's L1 logistic regression (saga).
    Mean loss + λ‖W‖₁ over two softmax columns has the binary problem's minimum with
    w = W₁ − W₀ (min |a| + |b| s.t. a − b = w is |w|), and C = 1 / (λ n)."""
    from sklearn.linear_model import LogisticRegression

    from scalelab.engine import StackedGroup

    rng = np.random.default_rng(3)
    n, p = 200, 8
    X = rng.normal(size=(n, p))
    y = (X[:, 0] - 0.7 * X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    np.savez(tmp_path / "convex.npz", X=X, y=y, X_test=X[:4], y_test=y[:4])
    lams = [0.01, 0.05]
    spec = StudySpec.model_validate({
        "name": "l1", "profile": "torch", "seeds": 1,
        "data": {"dataset": "file", "path": str(tmp_path / "convex.npz")},
        "model": {"hidden": []}, "optim": {"name": "sgd", "lr": 0.5},
        "train": {"batch_size": n, "epochs": 1, "dtype": "float64", "shuffle": False},
        "grid": {"optim.l1": lams}})
    g = StackedGroup(expand(spec))
    idx = torch.arange(n).expand(g.M, -1)
    for _ in range(6000):
        g.train_step(idx)
    layer = g.model.weighted[0]
    W, b = g.params[layer.weight].detach().numpy(), g.params[layer.bias].detach().numpy()
    for m, lam in enumerate(lams):
        ref = LogisticRegression(C=1 / (lam * n), l1_ratio=1.0, solver="saga", tol=1e-12, max_iter=200_000).fit(X, y)
        w = W[m, :, 1] - W[m, :, 0]
        np.testing.assert_allclose(w, ref.coef_[0], atol=2e-4)
        assert float(b[m].reshape(-1)[1] - b[m].reshape(-1)[0]) == pytest.approx(ref.intercept_[0], abs=2e-4)
        # the proximal step gives exact zeros where the L1 solution has them
        zero = np.abs(ref.coef_[0]) < 1e-6
        assert zero.any() and (W[m][zero] == 0).all()


def test_ensemble_of_identical_seeds_equals_one_model():
    from scalelab.studies._cv_fit import _networks
    from scalelab.studies._cv_specs import Specs, arm_specs
    from scalelab._spec._trials import Trial

    spec = StudySpec.model_validate(tiny_spec(arms={"network": {}}))
    arm = arm_specs(spec)["network"]
    t = Trial(study="x", level={}, seed=3, spec=Specs(arm)(0, 0))
    one = _networks([t], None, None, (), None, None, None)[0]
    same = _networks([t] * 4, None, None, (), None, None, None)
    probs = np.mean([m["probs"] for m in same], axis=0)
    y = _folds.cv_split(t.spec)[1].y_val
    np.testing.assert_allclose(probs, one["probs"], rtol=0, atol=1e-6)
    assert np.mean(probs.argmax(-1) == y) == one["acc"]


# ----------------------------------------------------------------------------- data

def test_generator_is_deterministic_and_its_bayes_accuracy_is_right():
    """The Bayes rule built densely in the test (Σ⁻¹ δ with the threshold log π₀/π₁) scores,
    on 200,000 fresh samples, the accuracy the closed form says (within 4 binomial SE)."""
    kw = dict(p=30, informative=12, block=5, rho=0.4, class_sep=0.6, label_noise=0.1, balance=0.35)
    X1, y1 = make_pn_classification(n=500, seed=5, **kw)
    X2, y2 = make_pn_classification(n=500, seed=5, **kw)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X, y = make_pn_classification(n=200_000, seed=9, **kw)
    S = np.kron(np.eye(6), np.full((5, 5), 0.4) + 0.6 * np.eye(5))
    mu = np.zeros(30)
    mu[:12] = 0.6
    w = np.linalg.solve(S, mu)
    score = (X.astype(np.float64) - mu / 2) @ w
    pred = (score > math.log(0.65 / 0.35)).astype(int)
    acc = float((pred == y).mean())
    a = bayes_accuracy(**kw)
    assert abs(acc - a) < 4 * math.sqrt(a * (1 - a) / len(y))


@requires_real
def test_fmnist_pair_draws_its_own_rows_per_repeat():
    from scalelab.data._pn import fmnist_pair

    a = fmnist_pair(None, (0, 6), 80, 20, repeat=0)
    b = fmnist_pair(None, (0, 6), 80, 20, repeat=1)
    assert a[0].shape == (80, 784) and a[0].dtype == np.uint8
    assert a[1].sum() == 40 and a[3].sum() == 10             # balanced
    assert not np.array_equal(a[0], b[0])                      # each repeat its own development rows
    np.testing.assert_array_equal(a[2], b[2])                  # the same test rows
    assert not {r.tobytes() for r in a[0]} & {r.tobytes() for r in a[2]}


@pytest.mark.parametrize("content,target,message", [
    ("a,b,label\n1,2,0\n3,4,1\n", "y", "no label column named 'y'; columns are a, b, label"),
    ("a,b,label\n1,2,0\n3,x,1\n", "label", "line 3, column 'b': 'x' is not a number"),
    ("a,b,label\n1,2,0\n3,,1\n", "label", "line 3, column 'b' is NaN (empty)"),
    ("a,label\n" + "".join(f"{i},1\n" for i in range(20)), "label", "a single class"),
    ("a,label\n" + "".join(f"{i},{int(i < 4)}\n" for i in range(30)), "label",
     "class 1 has 3 development rows, fewer than cv.folds = 5"),
])
def test_bad_tables_get_one_actionable_line(tmp_path, capsys, content, target, message):
    (tmp_path / "t.csv").write_text(content)
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "t"\nseeds = 2\n[data]\ndataset = "file"\npath = "{tmp_path / "t.csv"}"\n'
                    f'target = "{target}"\n[cv]\nfolds = 5\n')
    assert main(["run", str(spec), "--db", str(tmp_path / "s.db"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_nan_in_an_npz_is_named(tmp_path):
    X = np.ones((20, 3))
    X[7, 2] = np.nan
    np.savez(tmp_path / "t.npz", X=X, y=np.tile([0, 1], 10))
    from scalelab.data._tables import read_table

    with pytest.raises(DataError, match=r"row 7, column 2 is NaN"):
        read_table(tmp_path / "t.npz")


# ----------------------------------------------------------------------------- findings

def _arm(name, table):
    from scalelab._explain._cv_view import ArmSummary

    A = np.asarray(table)
    return ArmSummary(name, "", "network", None, A, list(range(A.shape[0])), [(0, k) for k in range(A.shape[1])],
                      decompose(A))


def test_findings_on_planted_tables_both_sides():
    from scalelab._explain._cv import cv_findings

    rng = np.random.default_rng(2)
    seedy = 0.8 + 0.08 * rng.normal(size=(20, 5)) + 0.005 * rng.normal(size=(1, 5))
    splitty = 0.8 + 0.005 * rng.normal(size=(20, 5)) + 0.08 * rng.normal(size=(1, 5))
    calm = 0.85 + 0.01 * rng.normal(size=(20, 5))
    f = {x.id: x for x in cv_findings([_arm("net", seedy), _arm("calm", calm)])}
    assert "seed-variance-dominates" in f and f["seed-variance-dominates"].evidence["seed_share"] > 0.5
    assert f["largest-variance-reduction"].level == {"arm": "calm"}
    assert f"{math.sqrt(decompose(calm)['var_total']):.3f}" in f["largest-variance-reduction"].text
    assert f["best-mean"].level == {"arm": "calm"} and f["best-mean"].evidence["ci_excludes_baseline"]
    wild = 0.7 + 0.15 * rng.normal(size=(20, 5))
    f = {x.id: x for x in cv_findings([_arm("net", splitty), _arm("wild", wild)])}
    assert "split-variance-dominates" in f and f["split-variance-dominates"].evidence["split_share"] > 0.5
    assert "no-variance-reduction" in f and "largest-variance-reduction" not in f
    assert f["best-mean"].level == {"arm": "wild"} and f["best-mean"].evidence["difference"] < 0


# ----------------------------------------------------------------------------- end to end

def test_a_small_study_end_to_end_from_the_cli(tmp_path, capsys):
    spec = StudySpec.model_validate(tiny_spec())
    db = str(tmp_path / "s.db")
    from scalelab import run_study

    run_study(spec, db)
    with Store(db) as store:
        n = len(store.trials(store.latest_study("tiny-cv")["id"]))
    run_study(spec, db)   # a rerun trains nothing
    with Store(db) as store:
        assert len(store.trials(store.latest_study("tiny-cv")["id"])) == n
    capsys.readouterr()
    assert main(["show", "tiny-cv", "--db", db, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    outer = [t for t in out["trials"] if t["phase"] == "outer"]
    # every (arm, repeat, fold, seed) once, with its metrics
    keys = {(t["arm"], t["repeat"], t["fold"], t["seed"]) for t in outer}
    assert len(keys) == len(outer) == 4 * 3 * 3 + 2 * 3 + 3
    assert all(t["val_acc"] is not None and t["test_acc"] is None for t in outer)
    tests = [t for t in out["trials"] if t["phase"] == "test"]
    assert {t["arm"] for t in tests} == {"network", "l2", "pca", "ensemble", "svm"}
    assert all(t["test_acc"] is not None and t["val_acc"] is None for t in tests)
    assert any(t["phase"] == "inner" and t["inner"] == 1 for t in out["trials"])
    arms = {a["arm"]: a for a in out["arms"]}
    assert set(arms["l2"]["chosen"]) == {"repeat 0 fold 0", "repeat 0 fold 1", "repeat 0 fold 2"}
    assert out["answer"].startswith("With n = 60 samples") and "Bayes accuracy" in out["answer"]
    assert "on the held-out test rows it scored" in out["answer"] and "std definition" not in out["answer"]
    assert 0 <= out["data_property"]["share"] <= 1 and out["arms"][0]["test_std_seeds"] is not None
    assert main(["explain", "tiny-cv", "--db", db]) == 0
    text = capsys.readouterr().out
    assert "variance-dominates]" in text and "[best-mean]" in text and "[unconstrained-inputs]" in text
    assert main(["report", "tiny-cv", "--db", db, "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "data-role='answer'" in html and "touched once per arm" in html and "<svg" in html


def test_cv_spec_mistakes_are_one_line(tmp_path):
    from scalelab._spec import SpecError, parse_spec
    from scalelab.studies._cv_specs import check_cv_spec

    with pytest.raises(SpecError, match=r"unknown key 'cv.inner_fold';.* allowed here: folds, repeats, inner_folds"):
        parse_spec({"name": "x", "cv": {"inner_fold": 3}})
    with pytest.raises(SpecError, match=r"choose optim.l2, optim.l1, cv.pca or cv.C"):
        parse_spec({"name": "x", "cv": {"select": "optim.lr", "values": [1.0]}})
    spec = parse_spec(tiny_spec(input={"transform": "scale", "scale": "1/255"}, arms={"pca": {"cv.pca": 5}}))
    with pytest.raises(SpecError, match=r"arms.pca: PCA whitens the inputs itself; set \"input.transform\" = \"none\""):
        check_cv_spec(spec)
    # a study written before the cv sections existed keeps its trial keys
    from scalelab._spec._trials import trial_key

    plain = parse_spec({"name": "x"})
    d = expand(plain)[0].spec.model_dump()
    assert "cv" in d and expand(plain)[0].key == trial_key({k: v for k, v in d.items() if k != "cv"} | {
        "data": {k: v for k, v in d["data"].items() if k != "generator"},
        "optim": {k: v for k, v in d["optim"].items() if k != "l1"}}, 0)


# ----------------------------------------------------------------------------- issue 33

def test_one_std_definition_in_table_findings_and_json():
    """The table's std across seeds, the finding's and the JSON's are one number: √(σ²seed + σ²res)."""
    from scalelab._explain._cv import cv_findings

    rng = np.random.default_rng(5)
    A = 0.8 + 0.05 * rng.normal(size=(20, 5)) + 0.01 * rng.normal(size=(1, 5))
    d = decompose(A)
    assert d["std_seeds"] == math.sqrt(d["var_seed"]) and d["std_splits"] == math.sqrt(d["var_split"])
    assert d["std_total"] == pytest.approx(math.sqrt(d["std_seeds"] ** 2 + d["std_splits"] ** 2))
    f = {x.id: x for x in cv_findings([_arm("net", A)])}
    assert f"std {d['std_seeds']:.3f}" in f["seed-variance-dominates"].text
    assert _arm("net", A).as_dict()["std_seeds"] == d["std_seeds"]


def test_arms_whose_intervals_overlap_the_best_are_called_a_tie():
    from scalelab._explain._cv import cv_findings
    from scalelab._explain._cv_view import tied_with

    rng = np.random.default_rng(6)
    base = _arm("net", 0.70 + 0.1 * rng.normal(size=(20, 5)))
    a = _arm("a", 0.950 + 0.01 * rng.normal(size=(20, 5)))
    b = _arm("b", 0.948 + 0.01 * rng.normal(size=(20, 5)))
    far = _arm("far", 0.85 + 0.002 * rng.normal(size=(20, 5)))
    best = max([a, b], key=lambda x: x.decomposition["mean"])
    other = b if best is a else a
    assert tied_with(best, [base, a, b, far]) == [other]          # overlapping: tied; apart: not
    (f,) = [x for x in cv_findings([base, a, b, far]) if x.id == "best-mean"]
    assert f.evidence["tied_with"] == [other.name] and "tied with" in f.text and "do not rank them" in f.text


def test_unconstrained_share_on_planted_data_both_sides():
    from scalelab.data._property import unconstrained_share

    rng = np.random.default_rng(7)
    wide = unconstrained_share(rng.normal(size=(64, 10_000)), rng.normal(size=(16, 10_000)))
    assert wide["rank"] == 63 and wide["share"] == pytest.approx(1 - 63 / 10_000, abs=0.01)   # p ≫ n
    basis = rng.normal(size=(5, 300))                                    # every row in a 5-dimensional subspace
    low = unconstrained_share(rng.normal(size=(64, 5)) @ basis, rng.normal(size=(16, 5)) @ basis)
    assert low["rank"] == 5 and low["share"] < 1e-10
    # by hand: a scored row half inside, half outside the span of the (centred) fit rows
    X_fit = np.array([[1.0, 0, 0], [-1.0, 0, 0]])
    assert unconstrained_share(X_fit, np.array([[1.0, 1.0, 0]]))["share"] == pytest.approx(0.5)


def test_test_spread_is_the_std_across_seeds_of_the_test_accuracy():
    a = _arm("net", np.full((3, 2), 0.8))
    a.test_acc = [0.70, 0.80, 0.90]
    assert a.test_std == pytest.approx(np.std([0.7, 0.8, 0.9], ddof=1))
    assert a.as_dict()["test_std_seeds"] == pytest.approx(0.1)


def test_keep_in_a_cross_validated_study_is_one_line(tmp_path):
    from scalelab import run_study
    from scalelab._spec import SpecError

    with pytest.raises(SpecError, match=r"train.keep stores the models of a study without \[cv\]"):
        run_study(tiny_spec(train={"batch_size": 32, "epochs": 1, "keep": "final"}), str(tmp_path / "k.db"))
