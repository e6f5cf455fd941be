"""Unscaled regression targets: targets an order of magnitude away from the scale of the
network's initial outputs.

Principle: initialisers (Glorot, He, LeCun) and standardisation aim at a scale of order
one. When the targets' size (the larger of their distance from the initial output mean
and their spread) is ≥ 10× both that unit scale and the initial outputs' std, or their
spread is ≤ 1/10 of both (the outputs' own random variation swamps what is to be
fitted), the loss is dominated by the scale mismatch: the first steps go to moving the output mean
(and scale), not to fitting how the targets vary. The rule quotes that ratio at step 0,
the first probed step where the output mean came within one target std of the target mean
(the steps spent just moving it; "not within" when it never did), and the test R² against
the reference (in regression: the level with the best R², typically standardized targets).
A mean prediction at the same level (predicts-the-mean) is then this rule's consequence.
"""

from __future__ import annotations

import numpy as np

from .._format import fmt
from ..probes._records import Scales
from ._compare import value_at
from ._findings import CAUSE, Finding
from ._one_run_refs import model
from ._registry import register
from ._view import LevelView, key

OUT_MEAN, OUT_STD = key(Scales, Scales.OUTPUT_MEAN), key(Scales, Scales.OUTPUT_STD)
TGT_MEAN, TGT_STD = key(Scales, Scales.TARGET_MEAN), key(Scales, Scales.TARGET_STD)
ORDER = 10.0
UNIT = 1.0     # the scale initialisers and standardisation aim for


@register({"unscaled-targets": CAUSE}, rank=24, needs=((Scales, Scales.OUTPUT_MEAN), (Scales, Scales.OUTPUT_STD),
                                                        (Scales, Scales.TARGET_MEAN), (Scales, Scales.TARGET_STD)))
def rule_unscaled_targets(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Target size vs the initial outputs' std (and unit scale) at step 0: ≥ 10× or ≤ 1/10."""
    if not t.has(*OUT_STD) or not t.has(*TGT_STD):
        return []
    if (model(t) or {}).get("loss") in ("binary_crossentropy", "categorical_crossentropy"):
        return []   # a watched classifier with one or several 0/1 outputs: its targets are labels, not scales
    s0 = t.steps(*OUT_STD)[0]
    om, osd, tm, tsd = (value_at(t, k, s0) for k in (OUT_MEAN, OUT_STD, TGT_MEAN, TGT_STD))
    big = max(abs(tm - om), tsd) / max(osd, UNIT)      # targets far from the outputs and from unit scale
    small = tsd / min(osd, UNIT)                       # the outputs' own spread (and unit scale) swamps the targets'
    if not (big >= ORDER or small <= 1 / ORDER):
        return []
    ratio = big if big >= ORDER else small
    reached = next((s for s in t.steps(*OUT_MEAN) if abs(value_at(t, OUT_MEAN, s) - value_at(t, TGT_MEAN, s))
                    <= value_at(t, TGT_STD, s)), None)
    ev = dict(fired="ratio", step=s0, target_mean=tm, target_std=tsd, output_mean=om, output_std=osd, ratio=ratio,
              mean_reached_step=reached, last_step=t.last_step(*OUT_MEAN), reference_level=ref.level,
              reference_ratio=(max(abs(value_at(ref, TGT_MEAN, s0) - value_at(ref, OUT_MEAN, s0)),
                                   value_at(ref, TGT_STD, s0)) / max(value_at(ref, OUT_STD, s0), UNIT)) if big >= ORDER
              else value_at(ref, TGT_STD, s0) / min(value_at(ref, OUT_STD, s0), UNIT))
    large = big >= ORDER
    text = (f"at {t.label}, the regression targets are {'far larger' if large else 'far smaller'} than the network's "
            f"initial outputs: at step {s0} the targets have mean {fmt(tm, 3)} and std {fmt(tsd, 3)} against outputs "
            f"with mean {fmt(om, 3)} and std {fmt(osd, 3)} "
            + (f"({fmt(ratio, 3)}× apart)" if large else f"(the targets' std is {fmt(ratio, 3)}× the outputs')"))
    text += (f"; the output mean came within one target std of the target mean at step {reached}" if reached is not None
             else f"; by step {ev['last_step']} the output mean had not come within one target std of the target mean")
    traj, ref_traj = r2_trajectory(t), r2_trajectory(ref)
    if traj:
        ev["test_r2_by_epoch"] = traj
        text += f"; test R² by epoch (median over seeds) {_arrow(traj)}"
    elif "test_r2" in t.final:
        ev["test_r2_median"] = float(np.nanmedian(t.final["test_r2"]))
        text += f"; test R² {ev['test_r2_median']:.3g}"
    text += f". At {ref.label}, step {s0}: {fmt(ev['reference_ratio'], 3)}×"
    if ref_traj and ref is not t:
        ev["reference_test_r2_by_epoch"] = ref_traj
        text += f", test R² by epoch {_arrow(ref_traj)}"
    return [Finding("unscaled-targets", t.level, ev, text + ".", at=float(s0))]


def r2_trajectory(v: LevelView) -> list[float]:
    """The median over seeds of the test R² after each epoch ([] without it)."""
    rows = [r for r in v.test_r2_by_seed if r]
    if not rows or len({len(r) for r in rows}) != 1:
        return []
    arr = np.array(rows, dtype=float)
    return [] if not np.isfinite(arr).any() else [float(x) for x in np.nanmedian(arr, axis=0)]


def _arrow(traj: list[float]) -> str:
    """First, middle and last epoch's values: "-4.1 → -1.2 → 0.05"."""
    picks = traj if len(traj) <= 3 else [traj[0], traj[len(traj) // 2], traj[-1]]
    return " → ".join(f"{x:.3g}" for x in picks)
