"""Ill-conditioning from feature scales.

Principle: for a dense first layer, the loss's curvature along the weights of input
feature j scales with that feature's variance, so the ratio of the largest to the
smallest per-feature std, squared, bounds the Hessian's condition number from below.
Gradient descent needs about κ steps to move along the flattest direction at the step
size the sharpest one allows. A level whose std ratio is ≥ 100 (κ ≥ 1e4) *and* ≥ 10× the
reference's (κ ≥ 100× the reference's, which trains) has that problem where the
reference does not. The Hessian's largest and most negative eigenvalues are quoted when
they were probed; a uniform rescaling of every feature leaves the ratio unchanged, so
raw-vs-scaled pixels never fire this rule.
"""

from __future__ import annotations

from .._format import fmt
from ..probes._records import Hessian, Scales
from ._compare import value_at
from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView, key

STD_RATIO = key(Scales, Scales.INPUT_STD_RATIO)
MAX_EIG, MIN_EIG = key(Hessian, Hessian.MAX_EIGENVALUE), key(Hessian, Hessian.MIN_EIGENVALUE)
RATIO, VS_REFERENCE = 100.0, 10.0


@register({"ill-conditioning": CAUSE}, rank=26, needs=((Scales, Scales.INPUT_STD_RATIO),))
def rule_ill_conditioning(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Per-feature std ratio at step 0: ≥ 100 and ≥ 10× the reference's."""
    if not t.has(*STD_RATIO) or not ref.has(*STD_RATIO) or t is ref:
        return []
    s0 = t.steps(*STD_RATIO)[0]
    r, rr = value_at(t, STD_RATIO, s0), value_at(ref, STD_RATIO, s0)
    if not (r >= RATIO and r >= VS_REFERENCE * rr):
        return []
    ev = dict(fired="std_ratio", step=s0, std_ratio=r, condition_bound=r * r, reference_level=ref.level, reference_std_ratio=rr)
    text = (f"at {t.label}, the inputs are ill-conditioned: at step {s0} the largest per-feature std is {fmt(r, 3)}× "
            f"the smallest, so the first layer's curvature spans a factor ≥ {fmt(r * r, 3)} (at {ref.label}: "
            f"{fmt(rr, 3)}×)")
    if t.has(*MAX_EIG):
        s = t.steps(*MAX_EIG)[0]
        ev.update(hessian_step=s, max_eigenvalue=value_at(t, MAX_EIG, s), min_eigenvalue=value_at(t, MIN_EIG, s),
                  reference_max_eigenvalue=value_at(ref, MAX_EIG, s))
        text += (f"; at step {s} the Hessian's largest eigenvalue is {fmt(ev['max_eigenvalue'], 3)} (at {ref.label}: "
                 f"{fmt(ev['reference_max_eigenvalue'], 3)})")
        if ev["min_eigenvalue"] < 0:
            text += f" and its most negative {fmt(ev['min_eigenvalue'], 3)}"
    return [Finding("ill-conditioning", t.level, ev, text + ".", at=float(s0))]
