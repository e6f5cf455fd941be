from __future__ import annotations

import torch

from ._base import Probe, plain_mlp

# A unit is saturated where its pre-activation sits in the activation's flat tail: at |z| = 3
# tanh' = 0.0099 (1% of its peak 1) and sigmoid' = 0.045 (18% of its peak 1/4), falling
# exponentially beyond.
SATURATION_Z = 3.0

DERIVATIVES = {   # of the activation, from its output a (and its input z for relu)
    "tanh": (lambda z, a: 1 - a * a, 1.0),
    "sigmoid": (lambda z, a: a * (1 - a), 0.25),
}


class Saturation(Probe):
    """Per hidden layer of a tanh or sigmoid MLP, on the probe batch: the share of
    pre-activations with |z| > 3 (over samples and units) and the mean derivative of the
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
            out[self.SATURATED.format(layer=i)] = (z.abs() > SATURATION_Z).to(z.dtype).mean(dim=(1, 2))
            out[self.REL_DERIVATIVE.format(layer=i)] = d(z, a).mean(dim=(1, 2)) / peak
        return out
