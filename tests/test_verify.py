"""Verify the fix (issue 32): each cause's remedy run next to it across seeds.

Oracles: the paired statistics against scipy's paired t-test (an independent implementation);
the remedy table against the rule registry (every cause id has a remedy or a stated reason);
verifications end to end on the engine (a digits study with raw inputs ×16 under Keras's
clipped cross-entropy, whose remedy must help, and a planted wrong rule, whose remedy must not)
and on a watched Keras run (the user's model untouched; the copies' losses read from the store).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalelab import Store, run_study
from scalelab._explain import rules
from scalelab._explain._findings import CAUSE, Finding
from scalelab._explain._registry import _RULES, register
from scalelab._remedies import NO_REMEDY, for_spec
from scalelab._spec import load_spec
from scalelab._verify_build import verification_spec
from scalelab._verify_read import stored_verification, with_verification
from scalelab._verify_stats import paired_effect

ROOT = Path(__file__).resolve().parents[1]


def test_every_cause_has_a_remedy_or_a_reason():
    from scalelab._remedies import _LOWER_LR, _UNIT_INPUTS

    declared = set(_UNIT_INPUTS) | set(_LOWER_LR) | {
        "unscaled-targets", "target-scale", "loss-at-mean", "vanishing-error-signal", "vanishing-gradients",
        "mode-averaging", "input-offset", "learning-rate", "non-finite-data", "sorted-labels", "labels-out-of-range",
        "frozen-model", "symmetric-init", "dead-units-at-start", "no-nonlinearity", "output-loss-mismatch"}
    causes = {i for r in rules() for i, role in r.ids.items() if role == CAUSE}
    missing = sorted(causes - declared - set(NO_REMEDY))
    assert not missing, f"cause ids with neither a remedy nor a reason in NO_REMEDY: {missing}"


def test_spec_remedies_are_valid_spec_changes():
    base = load_spec({"name": "x", "data": {"dataset": "digits"}, "input": {"transform": "scale", "scale": 16.0}})
    from scalelab._spec import iter_trials

    spec = next(iter(iter_trials(base))).spec
    for fid in ("clipped-zero-gradient", "loss-divergence", "unscaled-targets", "ill-conditioning"):
        r = for_spec(fid, spec)
        assert r is not None and r.spec, fid
        changed = load_spec({**base.model_dump(exclude={"grid", "arms", "descriptions", "verify"}),
                             "arms": {"a": r.spec}})
        assert changed.arms["a"] == r.spec
    assert for_spec("clipped-zero-gradient", spec).spec == {"input.transform": "standardize"}   # not pixels
    fm = load_spec({"name": "x", "input": {"transform": "scale", "scale": 1.0}})
    assert for_spec("clipped-zero-gradient", next(iter(iter_trials(fm))).spec).spec == {"input.scale": "1/255"}
    assert for_spec("loss-divergence", spec).spec == {"optim.lr": pytest.approx(spec.optim.lr / 10)}


def test_paired_effect_matches_scipy_paired_t():
    from scipy import stats

    rng = np.random.default_rng(3)
    before = {s: float(v) for s, v in enumerate(rng.normal(13.0, 1.0, 5))}
    after = {s: float(v) for s, v in enumerate(rng.normal(0.3, 0.05, 5))}
    e = paired_effect(before, after, higher=False)
    d = np.array([after[s] - before[s] for s in range(5)])
    ci = stats.ttest_rel(list(after.values()), list(before.values())).confidence_interval(0.95)
    assert e["diff_ci95"] == pytest.approx([ci.low, ci.high])
    assert e["before"] == pytest.approx(np.mean(list(before.values())))
    assert e["after_std"] == pytest.approx(np.std(list(after.values()), ddof=1))
    assert e["seeds_improved"] == 5 and e["helps"] and d.mean() < 0
    # no effect: seeds that improve and worsen alike do not help
    flat = paired_effect({0: 1.0, 1: 1.0, 2: 1.0}, {0: 0.9, 1: 1.1, 2: 1.0}, higher=False)
    assert not flat["helps"] and flat["seeds_improved"] == 1
    # a diverged seed before (NaN) that trains after counts as improved; the sign test decides
    div = paired_effect({s: math.nan for s in range(5)}, {s: 0.5 for s in range(5)}, higher=False)
    assert div["helps"] and div["seeds_improved"] == 5 and div["diff_ci95"] is None
    assert not paired_effect({s: math.nan for s in range(3)}, {s: 0.5 for s in range(3)}, False)["helps"]
    # heavy tails (an R² of -4000 beside -10): the t interval straddles 0, every one of 5 seeds improved
    r2_before, r2_after = {0: -4000.0, 1: -10.0, 2: -30.0, 3: -2500.0, 4: -5.0}, {s: 0.1 for s in range(5)}
    tail = paired_effect(r2_before, r2_after, higher=True)
    assert tail["diff_ci95"][0] < 0 < tail["diff_ci95"][1] and tail["helps"]
    # 4 of 5 improved and the interval straddles 0: not told apart from noise
    mixed = paired_effect(r2_before, {**r2_after, 4: -6.0}, higher=True)
    assert mixed["seeds_improved"] == 4 and mixed["diff_ci95"][0] < 0 and not mixed["helps"]


DIGITS = {"name": "verify-digits", "seeds": 3, "data": {"dataset": "digits"}, "input": {"transform": "scale"},
          "model": {"hidden": [32]}, "train": {"epochs": 3}, "probes": {"preset": "standard"},
          "grid": {"input.scale": ["1/16", 16.0]}}


@pytest.fixture
def planted_wrong_rule():
    """A wrong rule: it blames a divergence (remedy: a tenth of the learning rate) on the healthy
    level, which never diverged. Removed again after the test."""
    @register({"loss-divergence": CAUSE}, rank=997)
    def rule_planted_wrong(t, ref, found=()):
        if t.level.get("input.scale") != "1/16":
            return []
        return [Finding("loss-divergence", t.level, {"fired": "planted", "planted": 1.0},
                        f"at {t.label}, planted: the loss diverged.", role=CAUSE)]
    yield
    _RULES[:] = [r for r in _RULES if r.fn is not rule_planted_wrong]


def test_spec_study_verified_on_the_engine_and_a_wrong_rule_demoted(tmp_path, planted_wrong_rule):
    db = tmp_path / "s.db"
    store = Store(db)
    run_study(DIGITS, store)
    spec, skipped = verification_spec(store, "verify-digits")
    causes = {(c.finding, json.dumps(c.level)) for c in spec.verify.causes}
    assert ("clipped-zero-gradient", json.dumps({"input.scale": 16.0})) in causes
    assert ("loss-divergence", json.dumps({"input.scale": "1/16"})) in causes
    run_study(spec, store)
    records = {(r["finding"], json.dumps(r["level"])): r["verified"] for r in stored_verification(store, "verify-digits")}
    good = records[("clipped-zero-gradient", json.dumps({"input.scale": 16.0}))]
    assert good["remedy"].startswith('input.transform = "standardize"') and good["helps"]
    assert good["seeds"] == 3 and good["seeds_improved"] == 3 and good["after"] < good["before"]
    assert good["resolved"] is True and good["signal"]["after"] < 0.25 <= good["signal"]["before"]
    # the oracle: the stored trials' own final training losses, paired by seed
    vs = store.require_study("verify-digits.verify")
    finals = {}
    for t in store.trials(vs["id"]):
        finals[(t["level"]["arm"], t["seed"])] = store.epochs(t["id"])[-1]["train_loss"]
    before = [v for (arm, _), v in sorted(finals.items()) if arm == "input.scale=16 as found"]
    assert good["before"] == pytest.approx(np.mean(before))
    wrong = records[("loss-divergence", json.dumps({"input.scale": "1/16"}))]
    assert not wrong["helps"], wrong
    from scalelab._explain import explain

    found = with_verification(explain(store, "verify-digits"), stored_verification(store, "verify-digits"))
    planted = next(f for f in found if f.id == "loss-divergence")
    assert planted.role == "note" and "demoted to a note" in planted.text and planted.verified["helps"] is False
    from scalelab.report._html import render_html

    page = render_html(store, "verify-digits")   # each verified effect beside its finding
    assert page.count("data-role='verified'") == 2 and "did not help: demoted to a note" in page
    # rerunning the verification trains nothing more (resumable: every trial is stored)
    counts = {}
    run_study(spec, store, on_plan=counts.update)
    assert counts["todo"] == 0
    store.close()
    out = subprocess.run([sys.executable, "-m", "scalelab", "explain", "--verify", "--db", str(db), "verify-digits",
                          "--format", "json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    verified = [f for f in json.loads(out.stdout) if "verified" in f]
    assert {f["id"] for f in verified} == {"clipped-zero-gradient"}   # the planted rule lives in this process only
    for f in verified:
        assert set(f["verified"]) >= {"remedy", "metric", "before", "after", "before_std", "after_std",
                                      "seeds_improved", "seeds", "resolved"}


keras = pytest.importorskip("keras")


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "torch") != "torch" and keras.backend.backend() != "torch",
                    reason="the watched verification collects the data the fit sees on Keras's torch backend")
def test_watched_keras_run_verified_on_copies_and_the_model_untouched(tmp_path):
    if keras.backend.backend() != "torch":
        pytest.skip("Keras's backend is not torch in this process")
    sys.path.insert(0, str(ROOT / "examples" / "gallery"))
    from _data import pixels

    import scalelab.keras

    X, y = pixels()
    X = X.astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    snap = {}

    class Snapshot(keras.callbacks.Callback):   # runs before Diagnose's on_train_end: the weights fit left
        def on_train_end(self, logs=None):
            snap["w"] = [w.copy() for w in self.model.get_weights()]

    db = str(tmp_path / "k.db")
    diag = scalelab.keras.Diagnose("kv", db=db, verify=3, verbose=False)
    model.fit(X, y, epochs=8, batch_size=16, callbacks=[Snapshot(), diag], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(snap["w"], model.get_weights()))
    store = Store(db, readonly=True)
    rec = {r["finding"]: r["verified"] for r in stored_verification(store, "kv")}
    causes = [f.id for f in diag.findings if f.role == "cause"]
    assert causes and set(rec) <= set(causes)
    scale = rec.get("input-scale") or rec.get("clipped-zero-gradient")
    assert scale is not None, rec
    assert scale["remedy"].startswith("X = X / 255.0") and scale["helps"] and scale["seeds_improved"] == 3
    vs = store.require_study("kv.verify")
    rows = [(t["level"]["arm"], t["seed"], store.epochs(t["id"])) for t in store.trials(vs["id"])]
    assert {s for _, s, _ in rows} == {0, 1, 2} and all(len(e) == 8 for _, _, e in rows)


def test_two_causes_whose_remedies_lead_to_one_run_are_both_read(tmp_path):
    """Two causes at two levels whose remedies make the same run (trajectories: mode-averaging
    at trajectory_mse and at grid_softmax both become mdn_nll): the store keeps that run once,
    under the first arm; both causes are still verified from it (none is dropped)."""
    spec = load_spec({**{k: v for k, v in DIGITS.items() if k != "grid"}, "name": "two.verify", "seeds": 2,
                      "train": {"epochs": 1}, "probes": {"preset": "none"},
                      "arms": {"s16 as found": {"input.scale": 16.0}, "s32 as found": {"input.scale": 32.0},
                               "s16 fixed": {"input.scale": "1/16"}, "s32 fixed": {"input.scale": "1/16"}},
                      "verify": {"of": "two", "causes": [
                          {"finding": "input-scale", "level": {"input.scale": s}, "remedy": "input.scale = 1/16",
                           "change": {"input.scale": "1/16"}, "before": f"s{s} as found", "after": f"s{s} fixed"}
                          for s in (16, 32)]}})
    store = Store(tmp_path / "v.db")
    run_study(spec, store)
    arms = {t["level"]["arm"] for t in store.trials(store.require_study("two.verify")["id"])}
    assert "s16 fixed" in arms and "s32 fixed" not in arms   # the identical run, stored once
    recs = {r["level"]["input.scale"]: r["verified"] for r in stored_verification(store, "two")}
    assert set(recs) == {16, 32}
    assert recs[16]["after_by_seed"] == recs[32]["after_by_seed"]   # the one run both remedies lead to
    assert recs[16]["before_by_seed"] != recs[32]["before_by_seed"]


def _arm(loss: str, rows: list[tuple[float, float]], target: str = "none"):
    """A stored arm as the reader sees it: seeds 0..n-1, each with its final train loss and
    validation minFDE₂₀ (what every trajectory head stores)."""
    from scalelab._store._levels import LevelRecord, TrialRecord

    spec = {"loss": {"name": loss}, "target": {"transform": target}}
    return LevelRecord({"arm": loss}, [TrialRecord(dict(seed=i, status="done", spec=spec),
                                                   [dict(epoch=1, train_loss=tl, val_min_fde_20=fde)])
                                       for i, (tl, fde) in enumerate(rows)])


def test_a_remedy_that_changes_the_loss_is_judged_on_a_loss_free_metric():
    """mode-averaging's remedy swaps trajectory_mse for mdn_nll: the two losses' values do not
    compare (an NLL can be larger, or negative, for a better model). Planted both sides: a
    mixture head whose NLL is *larger* than the MSE but whose best-of-20 final positions are closer to
    the truth helps; one whose NLL is *lower* but whose futures are farther does not; the
    metric named is minFDE₂₀ either way. The same loss on both arms still reads the loss."""
    from scalelab._verify_read import level_effect

    mse = _arm("trajectory_mse", [(1.0, 20.0), (1.1, 21.0), (0.9, 19.5), (1.0, 20.5), (1.05, 20.2)])
    better = _arm("mdn_nll", [(3.0, 15.0), (3.2, 15.5), (2.9, 14.8), (3.1, 16.0), (3.0, 15.1)])
    worse = _arm("mdn_nll", [(-2.0, 25.0), (-2.1, 26.0), (-1.9, 24.5), (-2.0, 25.5), (-2.2, 25.2)])
    label, eff = level_effect(mse, better)
    assert label.startswith("validation minFDE₂₀") and "losses do not compare" in label
    assert eff["helps"] and eff["seeds_improved"] == 5
    assert eff["before"] == pytest.approx(np.mean([20.0, 21.0, 19.5, 20.5, 20.2]))
    assert eff["after"] == pytest.approx(np.mean([15.0, 15.5, 14.8, 16.0, 15.1]))
    label, eff = level_effect(mse, worse)
    assert label.startswith("validation minFDE₂₀") and not eff["helps"] and eff["seeds_improved"] == 0
    # standardized targets change the loss's units too: judged on minFDE₂₀, in the data's units
    label, eff = level_effect(mse, _arm("trajectory_mse", [(0.01, 21.0)] * 5, target="standardize"))
    assert label.startswith("validation minFDE₂₀") and not eff["helps"]
    # the same loss on both arms: its own value compares
    label, eff = level_effect(mse, _arm("trajectory_mse", [(0.5, 30.0)] * 5))
    assert label == "final train loss" and eff["helps"]


def test_watched_arms_are_scored_by_accuracy_on_class_targets_whatever_the_loss():
    """A regression loss on class indicators (gallery k05: softmax + MSE on multi-hot tags) is a
    classification: scored by accuracy (each tag thresholded at 0.5), not R²; real-valued
    targets under MSE by R²; the labels-from-zero copy's classes read back in the user's labels.
    Oracle: scikit-learn's accuracy_score and r2_score."""
    from sklearn.metrics import accuracy_score, r2_score

    from scalelab.attach._verify_watched import final_scores, is_classification

    rng = np.random.default_rng(0)
    tags = (rng.random((50, 4)) > 0.5).astype("float32")
    pred = tags + rng.normal(0, 0.4, tags.shape)
    assert is_classification(tags, {"loss": "mse"})
    row: dict = {}
    final_scores(row, pred, tags, {}, {"loss": "mse"})
    assert set(row) == {"train_acc"}
    assert row["train_acc"] == pytest.approx(accuracy_score(tags.reshape(-1), (pred > 0.5).reshape(-1)))
    row = {}   # BCEWithLogitsLoss: the outputs are logits, cut at 0
    final_scores(row, pred - 0.5, tags, {}, {"loss": "binary_crossentropy", "from_logits": True})
    assert row["train_acc"] == pytest.approx(accuracy_score(tags.reshape(-1), (pred > 0.5).reshape(-1)))
    y = rng.normal(3, 2, (50, 1))
    assert not is_classification(y, {"loss": "mse"})
    noisy, row = y + rng.normal(0, 1, y.shape), {}
    final_scores(row, noisy, y, {}, {"loss": "mse"})
    assert set(row) == {"train_r2"} and row["train_r2"] == pytest.approx(r2_score(y, noisy))
    labels = rng.integers(1, 4, 50)                      # labels 1..3; the copy trained on 0..2
    logits = rng.normal(0, 1, (50, 3))
    row = {}
    final_scores(row, logits, labels, {"label_offset": 1}, {"loss": "sparse_categorical_crossentropy"})
    assert row["train_acc"] == pytest.approx(accuracy_score(labels - 1, logits.argmax(1)))
    from scalelab._remedies import for_watched
    from scalelab.attach._verify_watched import changed_data

    mask = 255.0 * (rng.random((50, 1)) > 0.5)          # gallery t15: a PNG mask's 0/255 under BCEWithLogitsLoss
    r = for_watched("labels-out-of-range", {"allowed_max": 1, "label_max": 255}, {"classification": True}, {})
    _, m01, undo = changed_data(r, np.zeros((50, 2)), mask)
    assert np.array_equal(m01, (mask == 255).astype(mask.dtype))
    row = {}
    final_scores(row, logits[:, :1], mask, undo, {"loss": "binary_crossentropy", "from_logits": True})
    assert row["train_acc"] == pytest.approx(accuracy_score((mask == 255).reshape(-1), logits[:, 0] > 0))
    row = {}   # labels 1/2 under MSE (gallery k15): R² of the 0/1 copy's outputs back in the user's units
    out = rng.random(50)
    final_scores(row, out, labels.astype(float), {"label_offset": 1}, {"loss": "mse"})
    assert row["train_r2"] == pytest.approx(r2_score(labels, out + 1))
