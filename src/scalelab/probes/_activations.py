from __future__ import annotations

from . import _records as records
from ._base import Probe, plain_mlp


class Activations(records.Activations, Probe):
    """Per hidden layer, on the probe batch: pre-activation and activation mean, std and
    max |·| (over samples and units), and the dead-unit fraction: units whose activation is
    zero for every sample of the batch (for ReLU: dead units)."""

    cost = 1
    needs_forward = True

    def applies(self, view):
        # reads (M, samples, units) taps: the engine's MLP, or a watched model's flattened taps
        return plain_mlp(view) or getattr(view, "flat_taps", False)

    def _compute(self, ctx):
        taps = ctx.forward()[2]
        out = {}
        names = {"pre": (self.PRE_MEAN, self.PRE_STD, self.PRE_MAX_ABS),
                 "act": (self.ACT_MEAN, self.ACT_STD, self.ACT_MAX_ABS)}
        for layer in ctx.view.weighted:
            i = layer.index
            for kind, (mean, std, max_abs) in names.items():
                t = taps.get(f"{kind}{i}")
                if t is None:  # the output layer has no activation (its logits are the logits probe's)
                    continue
                out[mean.format(layer=i)] = t.mean(dim=(1, 2))
                out[std.format(layer=i)] = t.std(dim=(1, 2))
                out[max_abs.format(layer=i)] = t.abs().amax(dim=(1, 2))
                if kind == "act":
                    dead = (t == 0).all(dim=1)            # (M, units)
                    out[self.DEAD_FRAC.format(layer=i)] = dead.to(t.dtype).mean(dim=1)
        return out
