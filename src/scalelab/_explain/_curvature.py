"""The loss surface's curvature: the Hessian's largest and most negative eigenvalues over
training (the probe finds both by shifted power iteration).

Principle: on the quadratic model along a direction of curvature λ, gradient descent with
step lr is stable only while lr·λ is below a limit set by the optimizer (the edge of
stability; a largest eigenvalue above it makes steps overshoot):

* plain SGD (``sgd``, ``sparse_sgd``): x ← (1 − lr·λ)x grows when |1 − lr·λ| > 1, so
  λ < 2/lr;
* heavy-ball momentum μ (``momentum``, torch's buf ← μ·buf + g, x ← x − lr·buf): the
  iteration x' = (1 + μ − lr·λ)x − μ·x₋₁ has a root at −1 when lr·λ = 2(1 + μ), so
  λ < 2(1 + μ)/lr;
* Nesterov momentum (torch's x ← x − lr·(g + μ·buf)): it evaluates the step's gradient
  part (1 + μ)·g plus μ²·buf, whose characteristic polynomial
  z² − (1 + μ)(1 − lr·λ)z + μ(1 − lr·λ) has a root at −1 when lr·λ = 2(1 + μ)/(1 + 2μ), so
  λ < 2(1 + μ)/((1 + 2μ)·lr): the look-ahead gradient damps the oscillation momentum
  allows, so its limit lies between plain SGD's and heavy ball's.

Adaptive optimizers (Adam) rescale each direction, so no such limit is stated for them.
A negative eigenvalue is a saddle direction, reported as "most negative", never as the
top one. A surface exactly flat everywhere it was probed moves nothing.
"""

from __future__ import annotations

import numpy as np

from .._format import fmt
from ..probes._records import Hessian
from ._findings import CAUSE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

# the optimizers with a stability limit on the quadratic model (see the module's principle)
STABILITY = {"sgd": "plain SGD", "sparse_sgd": "plain SGD", "momentum": "momentum SGD"}


def stability_limit(name: str, lr: float, momentum: float = 0.0, nesterov: bool = False) -> tuple[float, str]:
    """The largest curvature λ that optimizer ``name`` with step ``lr`` is stable on, and
    its formula: 2/lr for plain SGD, 2(1 + μ)/lr for heavy-ball momentum μ, 2(1 + μ)/((1 + 2μ)·lr)
    for Nesterov momentum (derivations in the module's principle)."""
    if name != "momentum" or momentum == 0:
        return 2.0 / lr, "2/lr"
    mu = float(momentum)
    if nesterov:
        return 2.0 * (1 + mu) / ((1 + 2 * mu) * lr), f"2(1 + μ)/((1 + 2μ)·lr) with μ = {fmt(mu, 3)}"
    return 2.0 * (1 + mu) / lr, f"2(1 + μ)/lr with μ = {fmt(mu, 3)}"


TOP = key(Hessian, Hessian.MAX_EIGENVALUE)
LOW = key(Hessian, Hessian.MIN_EIGENVALUE)


@register({"curvature": NOTE, "sharp-curvature": CAUSE, "flat-loss-surface": CAUSE}, rank=60,
          needs=((Hessian, Hessian.MAX_EIGENVALUE), (Hessian, Hessian.MIN_EIGENVALUE)))
def rule_curvature(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The largest Hessian eigenvalue at the first and last probed steps (and the most
    negative one where it is negative); a loss surface that is exactly flat, or sharper
    than the optimizer's stability limit (:func:`stability_limit`)."""
    if not t.has(*TOP):
        return []
    steps = t.steps(*TOP)
    first, last = (float(np.median(t.at(*TOP, s))) for s in (steps[0], steps[-1]))
    ev = dict(fired="max_eigenvalue_first", first_step=steps[0], last_step=steps[-1], max_eigenvalue_first=first, max_eigenvalue_last=last)
    if t.has(*LOW):
        ev["min_eigenvalue_first"] = float(np.median(t.at(*LOW, steps[0])))
        ev["min_eigenvalue_last"] = float(np.median(t.at(*LOW, steps[-1])))
    if ref.has(*TOP) and ref is not t:   # the median over seeds, as for this level (value_at gives the mean)
        ref_steps = [x for x in ref.steps(*TOP) if x <= steps[0]] or ref.steps(*TOP)[:1]
        ev.update(reference_level=ref.level,
                  reference_max_eigenvalue_first=float(np.nanmedian(ref.at(*TOP, ref_steps[-1]))))
    allv = np.concatenate([t.at(*TOP, s) for s in steps] + ([t.at(*LOW, s) for s in steps] if t.has(*LOW) else []))
    opt = t.spec.optim
    if np.all(allv == 0):
        return [Finding("flat-loss-surface", t.level, ev,
                        f"at {t.label}, the loss surface is exactly flat where it was probed: the Hessian's eigenvalues "
                        f"are 0.0 at every probed step ({steps[0]}–{steps[-1]}) in every seed, so neither gradient nor "
                        f"curvature moves the weights.")]
    over = f"the Hessian's largest eigenvalue (median over seeds) is {fmt(first, 3)} at step {steps[0]} " \
           f"and {fmt(last, 3)} at step {steps[-1]}"
    text = f"at {t.label}, {over}"
    if ev.get("min_eigenvalue_first", 0) < 0 or ev.get("min_eigenvalue_last", 0) < 0:
        text += (f"; its most negative eigenvalue is {fmt(ev['min_eigenvalue_first'], 3)} and "
                 f"{fmt(ev['min_eigenvalue_last'], 3)} (a saddle direction)")
    if "reference_max_eigenvalue_first" in ev:
        text += f" (at {ref.label}, step {steps[0]}: {fmt(ev['reference_max_eigenvalue_first'], 3)})"
    fid = "curvature"
    if opt.name in STABILITY:
        # the first kernel's lr as the optimizer used it (per-layer and equivalence multipliers)
        lr = t.spec.effective.lr[0] if t.spec.effective else opt.lr * opt.lr_mult[0]
        limit, formula = stability_limit(opt.name, lr, opt.momentum, bool(opt.nesterov))
        ev["sgd_stability_limit"] = limit
        if max(first, last) > limit:
            fid = "sharp-curvature"
            s = steps[0] if first > limit else steps[-1]
            ev["step"] = s
            ev["fired"] = "max_eigenvalue_first" if first > limit else "max_eigenvalue_last"
            # the reason first: an answer quotes a finding's first clause, which must say why it fired
            text = (f"at {t.label}, the loss surface is sharper than {STABILITY[opt.name]} can follow: at step {s} the "
                    f"Hessian's largest eigenvalue ({fmt(ev[ev['fired']], 3)}, median over seeds) is above the "
                    f"stability limit {formula} = {fmt(limit, 3)}, where steps overshoot; {over}" + text[len(f"at {t.label}, {over}"):])
    return [Finding(fid, t.level, ev, text + ".", at=float(ev["step"]) if "step" in ev else None)]
