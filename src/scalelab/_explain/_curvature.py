"""The loss surface's curvature: the top Hessian eigenvalue over training."""

from __future__ import annotations

import numpy as np

from .._levels import fmt
from ..probes import Hessian
from ._findings import CAUSE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

TOP = key(Hessian, Hessian.TOP_EIGENVALUE)


@register({"curvature": NOTE, "sharp-curvature": CAUSE, "flat-loss-surface": CAUSE}, rank=60,
          needs=((Hessian, Hessian.TOP_EIGENVALUE),))
def rule_curvature(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The top Hessian eigenvalue (power iteration) at the first and last probed steps; a loss
    surface that is exactly flat, or sharper than plain SGD's stability limit 2/lr."""
    if not t.has(*TOP):
        return []
    steps = t.steps(*TOP)
    first, last = (float(np.median(t.at(*TOP, s))) for s in (steps[0], steps[-1]))
    ev = dict(first_step=steps[0], last_step=steps[-1], top_eigenvalue_first=first, top_eigenvalue_last=last)
    if ref.has(*TOP) and ref is not t:
        rs = ref.steps(*TOP)
        ev.update(reference_level=ref.level, reference_top_eigenvalue_first=float(np.median(ref.at(*TOP, rs[0]))))
    allv = np.concatenate([t.at(*TOP, s) for s in steps])
    opt = t.spec.optim
    if np.all(allv == 0):
        return [Finding("flat-loss-surface", t.level, ev,
                        f"at {t.label}, the loss surface is exactly flat where it was probed: the top Hessian eigenvalue is "
                        f"0.0 at every probed step ({steps[0]}–{steps[-1]}) in every seed, so neither gradient nor curvature "
                        f"moves the weights.")]
    text = (f"at {t.label}, the top Hessian eigenvalue (median over seeds) is {fmt(first, 3)} at step {steps[0]} and "
            f"{fmt(last, 3)} at step {steps[-1]}")
    if "reference_top_eigenvalue_first" in ev:
        text += f" (at {ref.label}: {fmt(ev['reference_top_eigenvalue_first'], 3)} at its first probed step)"
    fid = "curvature"
    if opt.name in ("sgd", "momentum"):
        # the first kernel's lr as the optimizer used it (per-layer and equivalence multipliers)
        lr = t.spec.effective.lr[0] if t.spec.effective else opt.lr * opt.lr_mult[0]
        limit = 2.0 / lr
        ev["sgd_stability_limit"] = limit
        if max(first, last) > limit:
            fid = "sharp-curvature"
            text += f"; above plain SGD's stability limit 2/lr = {fmt(limit, 3)}, where steps overshoot"
    return [Finding(fid, t.level, ev, text + ".")]
