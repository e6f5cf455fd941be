"""Reading a stored verification (a spec study's, trained on the engine, or a watched run's,
repeated on a copy of the user's model) and putting it beside the findings it verifies:
each verified cause gets ``verified`` (before → after, seed spread, CI, seeds improved,
whether its signal went away); a cause whose remedy did not help becomes a note, and says so.
Torch-free: ``explain --verify`` and ``report`` only read."""

from __future__ import annotations

import json
import math

import numpy as np

from ._explain._zero_gradient import THRESHOLD as ZERO_GRADIENT_THRESHOLD
from ._format import level_label
from ._remedies import ZERO_GRADIENT_WRONG
from ._store import Store
from ._store._levels import LevelRecord, read_levels
from ._verify_build import verify_name
from ._verify_stats import effect_text, paired_effect, verified_record

# the rule's own threshold on the signal it fires on: below it the finding does not fire
SIGNAL_THRESHOLDS = {ZERO_GRADIENT_WRONG: ZERO_GRADIENT_THRESHOLD}
SIGNAL_NAMES = {ZERO_GRADIENT_WRONG: "zero-gradient share (misclassified)"}


def _final(r, name: str) -> float:
    if r.status == "diverged" or not r.epochs:
        return math.nan
    v = r.epochs[-1].get(name)
    return math.nan if v is None else float(v)


# A trajectory head's own loss never ranks it against another head's (mdn_nll's NLL beside
# trajectory_mse's squared error), nor a loss on standardized targets against one on raw
# targets: the final-position distance of the best of k sampled futures to the truth, in the
# data's units, is what every head has (trajectories/_evaluate.shared_metrics), whatever its
# loss, and what the study itself ranks its levels by (_explain/_run.shared_metric).
TRAJECTORY_METRICS = (("val_min_fde_", "validation minFDE"), ("test_min_fde_", "test minFDE"))
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def metric_for(before: LevelRecord, after: LevelRecord) -> tuple[str, str, bool]:
    """(label, epoch field, higher is better): R² where the targets are regression targets,
    validation accuracy where there is a validation set; where the remedy changes the loss or
    the targets' units (their losses do not compare), a metric that does not depend on the
    loss: a trajectory head's minFDE_k, else accuracy; else the final training loss."""
    rows = [r for lv in (before, after) for r in lv.trials if r.epochs]
    def has(k: str) -> bool:
        vals = [r.epochs[-1].get(k) for r in rows]
        return bool(rows) and any(v is not None and math.isfinite(v) for v in vals)

    for key, label in (("val_r2", "validation R²"), ("test_r2", "test R²"), ("train_r2", "train R²"),
                       ("val_acc", "validation accuracy")):
        if has(key):
            return label, key, True
    spec = lambda lv: lv.trials[0].trial.get("spec") or {}   # noqa: E731
    changed = any(spec(before).get(s) != spec(after).get(s) for s in ("loss", "target"))
    changed |= any((r.trial.get("env") or {}).get("loss_changed") for r in after.trials)
    if changed:
        last = rows[0].epochs[-1] if rows else {}
        for prefix, label in TRAJECTORY_METRICS:
            key = next((k for k in sorted(last) if k.startswith(prefix) and k[len(prefix):].isdigit()), None)
            if key and has(key):
                k = key[len(prefix):]
                return f"{label}{k.translate(_SUB)} (best of {k} sampled final positions; the losses do not compare)", key, False
        for key, label in (("test_acc", "test accuracy"), ("train_acc", "train accuracy")):
            if has(key):
                return label, key, True
    return "final train loss", "train_loss", False


def level_effect(before: LevelRecord, after: LevelRecord) -> tuple[str, dict]:
    """The metric (see :func:`metric_for`) and the paired effect of the remedy arm ``after``
    over the cause's arm ``before``, seed by seed (see :func:`paired_effect`)."""
    label, key, higher = metric_for(before, after)
    return label, paired_effect({r.trial["seed"]: _final(r, key) for r in before.trials},
                                {r.trial["seed"]: _final(r, key) for r in after.trials}, higher)


def _signal(lv: LevelRecord, probe: str, name: str) -> float:
    """The largest seed mean over the probed steps of one quantity (what a rule that fires on
    its peak reads), NaN when it was not recorded."""
    by_step: dict = {}
    for r in lv.trials:
        for step, p, n, v in r.probes:
            if p == probe and n == name and v is not None:
                by_step.setdefault(step, []).append(v)
    return max((float(np.mean(v)) for v in by_step.values()), default=math.nan)


def stored_verification(store: Store, study: str) -> list[dict] | None:
    """One record per verified cause: finding, level, verified (see verified_record); None when
    the study has no stored verification."""
    name = verify_name(study)
    info = store.latest_study(name)
    if info is None:
        return None
    meta = (info["spec"] or {}).get("verify") or {}
    levels = {lv.label: lv for lv in read_levels(store, name)}
    arms = (info["spec"] or {}).get("arms") or {}

    def arm_level(arm: str):
        """An arm's trials; an arm whose spec is another arm's (two causes' remedies that
        lead to the same run) has the other's: the store keeps identical trials once."""
        lv = levels.get(level_label({"arm": arm}))
        if lv is None and arm in arms:
            lv = next((levels[level_label({"arm": a})] for a, over in arms.items()
                       if a != arm and over == arms[arm] and level_label({"arm": a}) in levels), None)
        return lv

    fired_after = _fired(store, name, info) if not info["spec"].get("watched") else None
    out = []
    for c in meta.get("causes", []):
        b, a = arm_level(c["before"]), arm_level(c["after"])
        if b is None or a is None:
            continue
        label, effect = level_effect(b, a)
        signal, resolved = None, None
        # the input scale's consequence, where the loss clips probabilities, is the clipped zero
        # gradient: its share is the signal (not recorded where the loss reads logits: no signal)
        sig = tuple(c.get("signal") or ()) or (ZERO_GRADIENT_WRONG if c["finding"] in
                                              ("zero-gradient", "clipped-zero-gradient", "input-scale") else ())
        if sig:
            before_s, after_s = _signal(b, *sig), _signal(a, *sig)
            if math.isfinite(before_s) or math.isfinite(after_s):
                signal = dict(name=SIGNAL_NAMES.get(sig, ".".join(sig)), before=before_s, after=after_s)
                if sig in SIGNAL_THRESHOLDS and math.isfinite(after_s) and before_s >= SIGNAL_THRESHOLDS[sig]:
                    resolved = after_s < SIGNAL_THRESHOLDS[sig]   # (a signal that never fired says nothing)
        if fired_after is not None:
            after_arm = a.level.get("arm", c["after"])   # the arm that holds the trials
            resolved = c["finding"] not in fired_after.get(after_arm, set()) and resolved is not False
        out.append(dict(finding=c["finding"], level=c["level"],
                        verified=verified_record(c["remedy"], c.get("change") or {}, label, effect, resolved, signal)))
    return out


def _fired(store: Store, name: str, info: dict) -> dict:
    """arm -> the finding ids (cause or consequence) the rules find at that arm of the verification."""
    from ._explain import explain

    out: dict = {}
    for f in explain(store, name):
        if f.role != "note":
            out.setdefault(f.level.get("arm"), set()).add(f.id)
    return out


def with_verification(findings: list, records: list[dict] | None) -> list:
    """The findings with each verified cause's ``verified`` set; a cause whose remedy did not
    help is demoted to a note, and its text says so."""
    if not records:
        return findings
    by = {(r["finding"], json.dumps(r["level"], sort_keys=True, default=str)): r["verified"] for r in records}
    for f in findings:
        v = by.get((f.id, json.dumps(f.level, sort_keys=True, default=str)))
        if v is None or f.role != "cause":
            continue
        f.verified = v
        if not v["helps"]:
            f.role = "note"
            f.evidence["demoted_by_verification"] = True
            f.text = f.text.rstrip(".") + (f"; demoted to a note: its remedy ({v['remedy']}) did not help "
                                           f"({v['seeds_improved']} of {v['seeds']} seeds improved).")
    return findings


def verification_text(findings: list) -> str:
    """The closing note: each verified cause with its measured effect."""
    lines = []
    for f in findings:
        v = getattr(f, "verified", None)
        if v is None:
            continue
        verdict = "verified" if v["helps"] else "demoted to a note"
        lines.append(f"- [{f.id}] at {level_label(f.level)}: {verdict}: {effect_text(v)}.")
    return ("Verified (each cause's remedy next to it, across seeds):\n" + "\n".join(lines) + "\n") if lines else ""
