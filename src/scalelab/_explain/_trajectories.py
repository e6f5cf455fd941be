"""Multimodal trajectory prediction (the ``trajectories`` study): a model that averages the
modes, and the model that recovers the branch probabilities best. Both read the final test
metrics a trajectory head stores (``test_between_share``, ``test_branch_distance``,
``test_branch_abs_error``, ``test_branch_mass.<junction>.<branch>``), not probes.

Principles behind the thresholds:

* **mode averaging**: a predicted final position within a quarter of the gap between the two
  nearest branch ends of its junction is on a branch (unambiguously nearer that end than
  the midpoint region, a grid cell's quantisation included); farther from every end, it is
  between them. A model averages the modes when that holds for most (over half) of its
  test predictions — the MSE optimum, the conditional mean, does so at every multimodal
  junction. The finding quotes the share and the mean distance to the nearest true branch.
* **best branch recovery**: among levels that store branch masses, the one with the lowest
  largest absolute error of predicted against true branch mass (over junction types and
  branches); the finding quotes that error and the worst branch, and calls it within
  tolerance when it is at most 0.05 (the issue's bar: a probability read to ±5 points).
"""

from __future__ import annotations

import numpy as np

from ._findings import CAUSE, NOTE, Finding
from ._registry import register
from ._view import LevelView

MAJORITY = 0.5          # share of predictions between branches above which a model averages modes
TOLERANCE = 0.05        # absolute error of a branch probability that counts as recovered


def _median(t: LevelView, name: str) -> float:
    return float(np.nanmedian(t.final[name])) if name in t.final else float("nan")


@register({"mode-averaging": CAUSE}, rank=74)
def rule_mode_averaging(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Most test predictions end between the branches, far from every path an agent takes."""
    share = _median(t, "test_between_share")
    if not share > MAJORITY:
        return []
    dist, floor = _median(t, "test_branch_distance"), _median(t, "test_truth_branch_distance")
    fde = _median(t, "test_fde")
    ev = dict(fired="between_share", between_share=share, branch_distance=dist, truth_branch_distance=floor, fde=fde,
              between_share_by_seed=[float(x) for x in t.final["test_between_share"]])
    return [Finding("mode-averaging", t.level, ev,
                    f"at {t.label}, the model averages the modes: {100 * share:.0f}% of its test predictions end "
                    f"between the branches, on average {dist:.3g} units from the nearest true branch's end "
                    f"(true futures: {floor:.2g}, the position noise), for a final displacement error of "
                    f"{fde:.3g} — it predicts a path no agent takes.")]


@register({"best-branch-recovery": NOTE}, rank=76)
def rule_best_branch_recovery(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The level that recovers the true branch probabilities best (lowest median branch-mass
    error among the study's levels; the reference level, ranked by minFDE_k, may be another),
    with its error and its worst branch."""
    if "test_branch_abs_error" not in t.final or not np.isfinite(t.final["test_branch_abs_error"]).any():
        return []
    peers = [v for v in (t.peers or [t]) if "test_branch_abs_error" in v.final
             and np.isfinite(v.final["test_branch_abs_error"]).any()]
    if peers and t.level != min(peers, key=lambda v: _median(v, "test_branch_abs_error")).level:
        return []
    err = _median(t, "test_branch_abs_error")
    pred = {k[len("test_branch_mass."):]: float(np.nanmean(v)) for k, v in t.final.items()
            if k.startswith("test_branch_mass.")}
    true = {k[len("test_true_mass."):]: float(np.nanmean(v)) for k, v in t.final.items()
            if k.startswith("test_true_mass.")}
    worst = max(pred, key=lambda k: abs(pred[k] - true.get(k, np.nan)) if k in true else -1) if pred else ""
    ev = dict(fired="branch_abs_error", branch_abs_error=err, by_seed=[float(x) for x in t.final["test_branch_abs_error"]],
              predicted=pred, true=true, worst=worst, within_tolerance=bool(err <= TOLERANCE))
    text = (f"{t.label} recovers the branch probabilities best: its largest error of predicted branch mass is "
            f"{err:.3f} (median over seeds)")
    if worst:
        text += f", at {worst.replace('.', ' ')} ({pred[worst]:.3f} predicted, {true[worst]:.3f} true)"
    text += ", within ±0.05." if err <= TOLERANCE else f", more than the ±{TOLERANCE} a recovered probability allows."
    return [Finding("best-branch-recovery", t.level, ev, text)]
