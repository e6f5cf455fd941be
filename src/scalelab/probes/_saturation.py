from __future__ import annotations

import math

from ._base import Probe, plain_mlp

# A unit is saturated where its pre-activation sits in the activation's flat tail: where the
# activation's derivative is at most PEAK_SHARE (1%) of its peak, so the unit passes on at
# most 1% of the backpropagated signal (and it falls exponentially beyond). One principle,
# a threshold per activation (saturation_z): tanh |z| > atanh(√0.99) ≈ 2.993, sigmoid
# |z| > ln((1 + √0.99)/(1 − √0.99)) ≈ 5.986 (a fixed |z| > 3 would be 1% for tanh but 18%
# for sigmoid).
PEAK_SHARE = 0.01

DERIVATIVES = {   # of the activation, from its output a (and its input z for relu)
    "tanh": (lambda z, a: 1 - a * a, 1.0),
    "sigmoid": (lambda z, a: a * (1 - a), 0.25),
}


def saturation_z(fn: str, share: float = PEAK_SHARE) -> float:
    """The |z| beyond which activation ``fn``'s derivative is below ``share`` of its peak.
    tanh' = 1 − tanh² = share at tanh z = √(1 − share); sigmoid' = σ(1 − σ) = share/4 at
    σ = (1 + √(1 − share))/2, i.e. z = ln(σ/(1 − σ)) = 2·atanh(√(1 − share))."""
    s = math.sqrt(1.0 - share)
    if fn == "tanh":
        return math.atanh(s)
    if fn == "sigmoid":
        return math.log((1 + s) / (1 - s))
    raise ValueError(f"saturation of {fn!r}: only tanh and sigmoid saturate")


SATURATION_Z = {fn: saturation_z(fn) for fn in DERIVATIVES}


class Saturation(Probe):
    """Per hidden layer of a tanh or sigmoid MLP, on the probe batch: the share of
    pre-activations in the flat tail, |z| > :data:`SATURATION_Z` of the activation (where its
    derivative is below 1% of its peak; over samples and units), and the mean derivative of the
    activation relative to its peak (1 for tanh, 1/4 for sigmoid): how much of the
    backpropagated signal the layer passes on. This measures the units themselves; a
    layer's gradient norm can stay large while its units saturate (its input is large)."""

    name = "saturation"
    SATURATED, REL_DERIVATIVE = "pre{layer}.saturated_frac", "act{layer}.rel_derivative"
    quantities = (SATURATED, REL_DERIVATIVE)
    cost = 1
    needs_forward = True

    def applies(self, view):
        return plain_mlp(view) and any(getattr(l, "fn", None) in DERIVATIVES for l in view.layers)

    def _compute(self, ctx):
        taps = ctx.forward()[2]
        out = {}
        for layer in ctx.view.layers:
            if layer.kind != "activation" or layer.fn not in DERIVATIVES:
                continue
            i = layer.index
            z, a = taps.get(f"pre{i}"), taps.get(f"act{i}")
            if z is None or a is None or z.shape != a.shape:   # a watched model that taps elsewhere
                continue
            d, peak = DERIVATIVES[layer.fn]
            out[self.SATURATED.format(layer=i)] = (z.abs() > SATURATION_Z[layer.fn]).to(z.dtype).mean(dim=(1, 2))
            out[self.REL_DERIVATIVE.format(layer=i)] = d(z, a).mean(dim=(1, 2)) / peak
        return out
