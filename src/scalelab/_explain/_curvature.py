"""The loss surface's curvature: the Hessian's largest and most negative eigenvalues over
training (the probe finds both by shifted power iteration).

Principle: plain gradient descent with step lr is stable along a direction of curvature λ
only while λ < 2/lr (the quadratic model's iteration x ← (1 − lr·λ)x grows when
|1 − lr·λ| > 1): a largest eigenvalue above 2/lr makes steps overshoot (the edge of
stability). A negative eigenvalue is a saddle direction, reported as "most negative",
never as the top one. A surface exactly flat everywhere it was probed moves nothing.
"""

from __future__ import annotations

import numpy as np

from .._levels import fmt
from ..probes import Hessian
from ._compare import value_at
from ._findings import CAUSE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

TOP = key(Hessian, Hessian.MAX_EIGENVALUE)
LOW = key(Hessian, Hessian.MIN_EIGENVALUE)


@register({"curvature": NOTE, "sharp-curvature": CAUSE, "flat-loss-surface": CAUSE}, rank=60,
          needs=((Hessian, Hessian.MAX_EIGENVALUE), (Hessian, Hessian.MIN_EIGENVALUE)))
def rule_curvature(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The largest Hessian eigenvalue at the first and last probed steps (and the most
    negative one where it is negative); a loss surface that is exactly flat, or sharper
    than plain SGD's stability limit 2/lr."""
    if not t.has(*TOP):
        return []
    steps = t.steps(*TOP)
    first, last = (float(np.median(t.at(*TOP, s))) for s in (steps[0], steps[-1]))
    ev = dict(first_step=steps[0], last_step=steps[-1], max_eigenvalue_first=first, max_eigenvalue_last=last)
    if t.has(*LOW):
        ev["min_eigenvalue_first"] = float(np.median(t.at(*LOW, steps[0])))
        ev["min_eigenvalue_last"] = float(np.median(t.at(*LOW, steps[-1])))
    if ref.has(*TOP) and ref is not t:
        ev.update(reference_level=ref.level, reference_max_eigenvalue_first=value_at(ref, TOP, steps[0]))
    allv = np.concatenate([t.at(*TOP, s) for s in steps] + ([t.at(*LOW, s) for s in steps] if t.has(*LOW) else []))
    opt = t.spec.optim
    if np.all(allv == 0):
        return [Finding("flat-loss-surface", t.level, ev,
                        f"at {t.label}, the loss surface is exactly flat where it was probed: the Hessian's eigenvalues "
                        f"are 0.0 at every probed step ({steps[0]}–{steps[-1]}) in every seed, so neither gradient nor "
                        f"curvature moves the weights.")]
    text = (f"at {t.label}, the Hessian's largest eigenvalue (median over seeds) is {fmt(first, 3)} at step {steps[0]} "
            f"and {fmt(last, 3)} at step {steps[-1]}")
    if ev.get("min_eigenvalue_first", 0) < 0 or ev.get("min_eigenvalue_last", 0) < 0:
        text += (f"; its most negative eigenvalue is {fmt(ev['min_eigenvalue_first'], 3)} and "
                 f"{fmt(ev['min_eigenvalue_last'], 3)} (a saddle direction)")
    if "reference_max_eigenvalue_first" in ev:
        text += f" (at {ref.label}, step {steps[0]}: {fmt(ev['reference_max_eigenvalue_first'], 3)})"
    fid = "curvature"
    if opt.name in ("sgd", "momentum"):
        # the first kernel's lr as the optimizer used it (per-layer and equivalence multipliers)
        lr = t.spec.effective.lr[0] if t.spec.effective else opt.lr * opt.lr_mult[0]
        limit = 2.0 / lr
        ev["sgd_stability_limit"] = limit
        if max(first, last) > limit:
            fid = "sharp-curvature"
            s = steps[0] if first > limit else steps[-1]
            ev["step"] = s
            text += f"; at step {s} it is above plain SGD's stability limit 2/lr = {fmt(limit, 3)}, where steps overshoot"
    return [Finding(fid, t.level, ev, text + ".", at=float(ev["step"]) if "step" in ev else None)]
