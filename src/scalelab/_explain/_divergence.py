"""Divergence with a finite loss: the loss grows early in training, or one update is as
large as the weights themselves, without ever becoming NaN.

Principles (not fitted to a case):

* The probe-batch loss (fixed rows, so steps compare) at step 0 is what the model knows
  before training. Training that works lowers it; a loss that reaches twice its step-0
  value has been pushed *up* by the updates: the steps overshoot.
* Healthy training changes a kernel by about 1e-3 of its norm per step (the common rule
  of thumb; 1e-2 early on). Updates of a tenth of the kernel's norm (‖ΔW‖/‖W‖ ≥ 0.1,
  median over the probed steps of the first tenth of training, where a too-large step
  shows) rewrite the weights within ten steps: they no longer average the gradient over
  batches, they replace what was learned.

What a divergence leaves behind (dead units, collapsed predictions) is reported by those
rules as a consequence of this one (they rank after it).
"""

from __future__ import annotations

import numpy as np

from .._format import fmt
from ..probes._records import Loss, UpdateRatio
from ._compare import value_at
from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView, key

PROBE_LOSS = key(Loss, Loss.PROBE_BATCH)
LOSS_GROWTH = 2.0        # the loss doubled over its step-0 value
UPDATE_RATIO = 0.1       # a tenth of the kernel per step: rewritten within ten steps
EARLY = 0.1              # the first tenth of training


@register({"loss-divergence": CAUSE}, rank=12, needs=((Loss, Loss.PROBE_BATCH), (UpdateRatio, UpdateRatio.RATIO)))
def rule_loss_divergence(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The probe-batch loss reached 2× its step-0 value in most seeds, or a kernel's update
    was ≥ 0.1 of its norm (median) over the first tenth of training."""
    ev, parts = {}, []
    if t.has(*PROBE_LOSS):
        steps = t.steps(*PROBE_LOSS)
        arr = np.stack([t.at(*PROBE_LOSS, s) for s in steps])            # (steps, seeds)
        # growth is a ratio to the start: only a positive starting loss can double (NLL on raw logits goes negative)
        grown = [next((s for s, x in zip(steps[1:], arr[1:, j]) if np.isfinite(x) and x >= LOSS_GROWTH * arr[0, j]),
                      None) if arr[0, j] > 0 else None for j in range(arr.shape[1])]
        hit = [s for s in grown if s is not None]
        if 2 * len(hit) > arr.shape[1]:
            s = min(hit)
            loss0, loss_s = float(np.nanmean(arr[0])), value_at(t, PROBE_LOSS, s)
            ev.update(loss_step=s, probe_loss_step0=loss0, probe_loss_at_step=loss_s, seeds_loss_grew=len(hit),
                      n_seeds=arr.shape[1], peak_probe_loss=float(np.nanmax(np.nanmean(arr, axis=1))),
                      reference_probe_loss_at_step=value_at(ref, PROBE_LOSS, s))
            parts.append(f"the probe-batch loss rose from {fmt(loss0, 3)} at step 0 to {fmt(loss_s, 3)} at step {s} "
                         f"(≥ {LOSS_GROWTH:g}× its start in {len(hit)} of {arr.shape[1]} seeds; at {ref.label}: "
                         f"{fmt(ev['reference_probe_loss_at_step'], 3)} at step {s})")
    ratios = [(n, f) for n, f in t.names(UpdateRatio.name, UpdateRatio.RATIO).items() if f["param"].endswith(".W")]
    best = None
    for n, f in ratios:
        steps = t.steps(UpdateRatio.name, n)
        early = [s for s in steps if s <= EARLY * steps[-1]] or steps[:1]
        r = t.per_seed_median(UpdateRatio.name, n, early)
        if r >= UPDATE_RATIO and (best is None or r > best[2]):
            best = (f["param"], early, r)
    if best is not None:
        param, early, r = best
        kk = key(UpdateRatio, UpdateRatio.RATIO, param=param)
        ref_r = ref.per_seed_median(*kk, [s for s in ref.steps(*kk) if s <= early[-1]]) if ref.has(*kk) else float("nan")
        ev.update(update_param=param, update_steps=[early[0], early[-1]], update_ratio_median=r,
                  reference_update_ratio_median=ref_r)
        parts.append(f"each update changed {param} by {fmt(r, 3)} of its own norm (‖ΔW‖/‖W‖, median over probed steps "
                     f"{early[0]}–{early[-1]}; at {ref.label}: {fmt(ref_r, 3)} over the same steps): the weights are "
                     f"rewritten within a few steps")
    if not parts:
        return []
    ev["fired"] = "probe_loss_at_step" if "loss_step" in ev else "update_ratio_median"
    # when it showed: the probed step the loss had doubled by, or update s (after the step-s probes: s + 0.5)
    at = min(([float(ev["loss_step"])] if "loss_step" in ev else []) +
             ([ev["update_steps"][0] + 0.5] if "update_steps" in ev else []))
    return [Finding("loss-divergence", t.level, ev,
                    f"at {t.label}, training diverges with a finite loss: {'; '.join(parts)}.", at=at)]
