"""Verifying a watched run's causes, whatever the framework: which causes have a remedy, the
data changes (on copies of the data the callback saw, never the user's arrays), and the
verification stored as the study ``STUDY.verify`` (one trial per arm and seed), which
``scalelab verify`` and ``explain --verify`` read as they read a spec study's."""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from .._remedies import NO_REMEDY, Remedy, for_watched
from .._verify_build import verify_name

DEFAULT_SEEDS = 5


def seeds_from_env(verify) -> int:
    """``verify=N`` (seeds per arm), else SCALELAB_VERIFY=N from the environment, else 0 (off)."""
    if verify is None:
        verify = os.environ.get("SCALELAB_VERIFY", "0") or "0"
    if verify is True:
        return DEFAULT_SEEDS
    n = int(verify)
    if n == 1 or n < 0:
        raise ValueError(f"verify={verify!r}: a seed spread needs at least 2 seeds per arm (5 is the usual); 0 is off")
    return n


def is_classification(y: np.ndarray, desc: dict) -> bool:
    """Class targets: a classification loss, or targets that are all 0 or 1 (binary labels,
    one-hot or multi-hot rows) whatever the loss: a regression loss on class indicators (MSE
    on tags) is still a classification, its arms judged by accuracy, not by R²."""
    from ._model import REGRESSION_LOSSES

    if desc.get("loss") not in REGRESSION_LOSSES:
        return True
    yf = np.asarray(y, dtype=np.float64)
    yf = yf[np.isfinite(yf)]
    return bool(yf.size) and bool(np.all((yf == 0) | (yf == 1)))


def data_facts(x: np.ndarray, y: np.ndarray, classification: bool) -> dict:
    xf = np.asarray(x, dtype=np.float64)
    fin = xf[np.isfinite(xf)]
    return dict(x_max=float(np.abs(fin).max()) if fin.size else 0.0,
                x_rms=float(np.sqrt(np.mean(fin ** 2))) if fin.size else 0.0,
                y_min=float(np.nanmin(y)) if np.size(y) else 0.0, y_max=float(np.nanmax(y)) if np.size(y) else 0.0,
                classification=classification)


def remedies(findings, facts: dict, model: dict | None) -> tuple[list, list]:
    """[(finding, Remedy)] for the causes with a remedy to run, and [(finding, why)] for the others."""
    todo, skipped = [], []
    for f in findings:
        if f.role != "cause":
            continue
        r = for_watched(f.id, f.evidence, facts, model)
        if r is None:
            skipped.append((f, NO_REMEDY.get(f.id, "no remedy to run on a copy yet")))
        else:
            todo.append((f, r))
    return todo, skipped


# the remedies that change the targets (their units or labels): the loss's values no longer
# compare, so the arms are judged by accuracy or R² in the user's units. A copy never runs
# another loss function: another output activation (output_for_loss) leaves the user's loss,
# the same function of the output against the same targets, and its values compare.
TARGETS_CHANGED = ("y_standardize", "labels_from_zero", "labels_to_01")


def changed_data(r: Remedy, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Copies of ``x``, ``y`` with a data remedy applied (others: the copies as they are), and
    what the targets' change needs to undo it (y_standardize: mean, std)."""
    x, y, what, undo = np.array(x, copy=True), np.array(y, copy=True), r.change.get("what"), {}
    if what == "x_scale":
        x = (x * r.change["factor"]).astype(x.dtype if x.dtype.kind == "f" else np.float32)
    elif what == "x_standardize":
        xf = x.astype(np.float32)
        mu, sd = xf.mean(0), xf.std(0)
        x = (xf - mu) / np.where(sd > 0, sd, 1.0)
    elif what == "nan_to_num":
        x = np.nan_to_num(x.astype(np.float32))
    elif what == "y_standardize":
        yf = y.astype(np.float32)
        undo = dict(mean=float(yf.mean()), std=float(yf.std()) or 1.0)
        y = (yf - undo["mean"]) / undo["std"]
    elif what == "labels_from_zero":
        undo = dict(label_offset=np.nanmin(y))   # the copy's class c is the user's label c + offset
        y = y - undo["label_offset"]
    elif what == "labels_to_01":   # binary labels (0/255, 1/2) as the 0 and 1 a binary loss reads
        lo, hi = np.nanmin(y), np.nanmax(y)
        undo = dict(label_offset=float(lo), label_span=float(hi - lo) or 1.0)
        y = (y == hi).astype(y.dtype if y.dtype.kind == "f" else np.float32)
    return x, y, undo


def train_r2(pred: np.ndarray, y: np.ndarray) -> float:
    """R² of predictions against the targets in their own units (an arm that trains on
    standardized targets is scored after undoing the standardization)."""
    p, t = np.asarray(pred, np.float64).reshape(len(y), -1), np.asarray(y, np.float64).reshape(len(y), -1)
    ss = float(((t - t.mean(0)) ** 2).sum())
    return 1.0 - float(((t - p) ** 2).sum()) / ss if ss > 0 else float("nan")


def final_scores(row: dict, pred: np.ndarray, y: np.ndarray, undo: dict, desc: dict) -> None:
    """The final epoch's accuracy (classification, see :func:`is_classification`) or R² in the
    targets' own units (regression) on the data trained on: what arms compare by when a
    remedy changes the loss or the units. Accuracy: the argmax against the label (integer
    labels or one-hot rows), else each output thresholded at 0.5 (a logit at 0) against its
    0/1 target (binary labels, multi-hot rows: the share of the labels right)."""
    p = np.asarray(pred, np.float64)
    if undo.get("std"):
        p = p * undo["std"] + undo["mean"]
    offset, span = undo.get("label_offset", 0), undo.get("label_span", 1)
    if not is_classification(y, desc):   # labels 1/2 under MSE: the copy's 0/1 outputs back in the user's units
        row["train_r2"] = train_r2(p * span + offset, y)
        return
    yy = (np.asarray(y) - offset) / span if undo else np.asarray(y)   # the labels as the copy learned them
    one_hot = yy.ndim == 2 and p.ndim == 2 and yy.shape == p.shape and bool(np.all(yy.sum(1) == 1))
    if p.ndim == 2 and p.shape[1] > 1 and (one_hot or yy.ndim == 1 or yy.shape[-1] == 1):
        labels = yy.argmax(1) if one_hot else yy.reshape(-1)
        row["train_acc"] = float(np.mean(p.argmax(1) == labels))
    elif p.size == yy.size:   # the loss reads logits (BCEWithLogitsLoss, from_logits=True): their 0.5 is 0
        cut = 0.0 if desc.get("from_logits") else 0.5
        row["train_acc"] = float(np.mean((p.reshape(-1) > cut) == (yy.reshape(-1) > 0.5)))


def store_verification(db: str, study: str, level: dict, framework: str, arms: list[dict], seconds: float) -> None:
    """Store each arm's seeds as trials of ``STUDY.verify``: ``arms`` holds, per cause,
    dict(finding, remedy, change, before=[per-seed result], after=[...]), a result being
    dict(seed, epochs=[{epoch, train_loss, ...}], signal=[(step, value)], status)."""
    from .._spec import ProbesSpec
    from .._store import Store
    from ._session import WatchedResult, WatchedTrial, trial_spec

    causes = []
    for a in arms:
        label = ", ".join(f"{k}={v}" for k, v in level.items()) or "the run"
        before, after = f"{a['finding']}: {label} as found", f"{a['finding']}: {label} with {a['remedy']}"
        causes.append(dict(finding=a["finding"], level=dict(level), remedy=a["remedy"], change=a["change"],
                           before=before, after=after, signal=a.get("signal")))
        a["arm_names"] = (before, after)
    meta = {"name": verify_name(study), "watched": True, "framework": framework, "verify": {"of": study,
                                                                                            "causes": causes},
            "wall_s": seconds}
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode() + str(time.time()).encode())
    store = Store(db)
    try:
        sid = store.study_id(verify_name(study), "verify-" + digest.hexdigest()[:12], meta)
        spec = trial_spec(verify_name(study), {}, {}, ProbesSpec())
        for a in arms:
            for name, results in zip(a["arm_names"], (a["before"], a["after"])):
                for r in results:
                    trial = WatchedTrial(verify_name(study), {"arm": name}, r["seed"], spec)
                    probes = [(s, "zero_grad", "share_wrong", v) for s, v in r.get("signal", [])]
                    res = WatchedResult(trial, r.get("status", "done"), r.get("diverged_step"), r.get("wall_s", 0.0),
                                        r["epochs"], probes)
                    store.save_trial(sid, res, {"watched": framework, "verify_of": study,
                                                "loss_changed": bool(a.get("loss_changed"))})
    finally:
        store.close()


def summary(db: str, study: str) -> str:
    """The verified effects as text (what the run prints after its findings)."""
    from .._store import Store
    from .._verify_read import stored_verification
    from .._verify_stats import effect_text

    store = Store(db, readonly=True)
    try:
        records = stored_verification(store, study) or []
    finally:
        store.close()
    lines = [f"scalelab: verified {study} (the remedies on copies of your model, across seeds):"]
    for r in records:
        v = r["verified"]
        verdict = "helps" if v["helps"] else "does NOT help: the finding is demoted to a note"
        lines.append(f"- [{r['finding']}] {verdict}: {effect_text(v)}")
    return "\n".join(lines)
