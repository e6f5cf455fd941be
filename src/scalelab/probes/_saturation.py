from __future__ import annotations

from . import _records as records
from ._base import Probe, plain_mlp
from ._records import DERIVATIVES, SATURATION_Z

class Saturation(records.Saturation, Probe):
    """Per hidden layer of a tanh or sigmoid MLP, on the probe batch: the share of
    pre-activations in the flat tail, |z| > :data:`SATURATION_Z` of the activation (where its
    derivative is below 1% of its peak; over samples and units), and the mean derivative of the
    activation relative to its peak (1 for tanh, 1/4 for sigmoid): how much of the
    backpropagated signal the layer passes on. This measures the units themselves; a
    layer's gradient norm can stay large while its units saturate (its input is large)."""

    cost = 1
    needs_forward = True

    def applies(self, view):
        return plain_mlp(view) and any(getattr(l, "fn", None) in DERIVATIVES for l in view.layers)

    def _compute(self, ctx):
        taps = ctx.forward()[2]
        out = {}
        for layer in ctx.view.layers:
            if "act" not in layer.taps or getattr(layer, "fn", None) not in DERIVATIVES:
                continue
            i = layer.index
            z, a = taps.get(f"pre{i}"), taps.get(f"act{i}")
            if z is None or a is None or z.shape != a.shape:   # a watched model that taps elsewhere
                continue
            d, peak = DERIVATIVES[layer.fn]
            out[self.SATURATED.format(layer=i)] = (z.abs() > SATURATION_Z[layer.fn]).to(z.dtype).mean(dim=(1, 2))
            out[self.REL_DERIVATIVE.format(layer=i)] = d(z, a).mean(dim=(1, 2)) / peak
        return out
