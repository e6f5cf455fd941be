"""A classifier that predicts one class: its accuracy is the majority class's share (one run)."""

from __future__ import annotations

import math

from ._findings import CAUSE, Finding
from ._one_run_refs import one_level, ref, role_after
from ._registry import register
from ._view import LevelView

# One class for at least 95% of the probe rows, with an accuracy within 5 points of the share
# of the most common label: the accuracy is what always answering that class scores.
ONE_CLASS, WITHIN = 0.95, 0.05


@register({"accuracy-at-majority": CAUSE}, rank=87)
def rule_accuracy_at_majority(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    pred, acc, major = ref(t, "pred_majority_share"), ref(t, "probe_accuracy"), ref(t, "majority_share")
    if not all(math.isfinite(v) for v in (pred, acc, major)) or pred < ONE_CLASS or abs(acc - major) > WITHIN:
        return []
    ev = dict(fired="pred_majority_share", pred_majority_share=pred, probe_accuracy=acc, majority_share=major)
    text = (f"at {t.label}, the trained model answers one class for {100 * pred:.0f}% of the probe rows: its accuracy "
            f"{100 * acc:.0f}% is the majority class's share of the labels ({100 * major:.0f}%).")
    role, text = role_after(found, ev, text)
    return [Finding("accuracy-at-majority", t.level, ev, text, role=role)]
