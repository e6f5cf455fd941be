"""Saturated tanh/sigmoid units, measured on the units themselves.

Principle: a unit is saturated where its activation's derivative is at most 1% of its peak
(the probe's threshold per activation, ``probes._records.saturation_z``: tanh |z| >
2.99, sigmoid |z| > 5.99), and it falls exponentially beyond; a layer where at least half of
the pre-activations sit there passes on at most about half of the backpropagated signal,
and the saturated half learns almost nothing. The rule reads the pre-activations (the
share beyond that |z|) and the activation's mean
derivative relative to its peak, never the gradient norm: a layer's weight gradient is its
input times the signal, so it can stay large (large inputs) while its units are saturated.
"""

from __future__ import annotations

from .._format import fmt, pct
from ..probes._records import Gradients, Saturation
from ..probes._records import SATURATION_Z
from ._compare import first_step, value_at
from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView, key

SATURATED_SHARE = 0.5


@register({"saturated-units": CAUSE}, rank=28, needs=((Saturation, Saturation.SATURATED),
                                                       (Saturation, Saturation.REL_DERIVATIVE)))
def rule_saturated_units(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Per tanh/sigmoid layer: the first probed step where ≥ half of the pre-activations
    sit where the derivative is below 1% of its peak, with the activation's mean derivative
    there and at the reference."""
    out = []
    for n, f in sorted(t.names(Saturation.name, Saturation.SATURATED).items()):
        i = int(f["layer"])
        sat = key(Saturation, Saturation.SATURATED, layer=i)
        s = first_step(t, sat, lambda x: x >= SATURATED_SHARE)
        if s is None:
            continue
        der = key(Saturation, Saturation.REL_DERIVATIVE, layer=i)
        last = t.last_step(*sat)
        grad = key(Gradients, Gradients.NORM, param=f"dense{i}.W")
        ev = dict(fired="saturated_share", layer=i, step=s, saturated_share=value_at(t, sat, s), rel_derivative=value_at(t, der, s),
                  last_step=last, last_saturated_share=value_at(t, sat, last), reference_level=ref.level,
                  reference_saturated_share=value_at(ref, sat, s), reference_rel_derivative=value_at(ref, der, s),
                  weight_gradient_norm=value_at(t, grad, s), reference_weight_gradient_norm=value_at(ref, grad, s))
        act = t.spec.model.activation
        z = SATURATION_Z.get(act)
        ev["saturation_z"] = z
        tail = f"|z| > {z:.2f}" if z is not None else "the flat tail"
        text = (f"at {t.label}, hidden layer {i}'s {act} units are saturated: at step {s}, {pct(ev['saturated_share'])} "
                f"of its pre-activations have {tail} (its derivative below 1% of its peak) and the mean derivative is {pct(ev['rel_derivative'])} of its peak "
                f"({pct(ev['last_saturated_share'])} saturated at step {last}). At {ref.label}, step {s}: "
                f"{pct(ev['reference_saturated_share'])} saturated, derivative {pct(ev['reference_rel_derivative'])} of "
                f"its peak")
        if ev["weight_gradient_norm"] == ev["weight_gradient_norm"]:   # recorded
            text += (f"; the layer's weight-gradient norm is {fmt(ev['weight_gradient_norm'], 3)} (at {ref.label}: "
                     f"{fmt(ev['reference_weight_gradient_norm'], 3)}), so the gradient norm alone would not show it")
        out.append(Finding("saturated-units", t.level, ev, text + ".", at=float(s)))
    return out
