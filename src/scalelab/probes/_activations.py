from __future__ import annotations

import torch

from ._base import Probe


class Activations(Probe):
    """Per hidden layer, on the probe batch: pre-activation and activation mean, std and
    max |·| (over samples and units), and the dead-unit fraction: units whose activation is
    zero for every sample of the batch (for ReLU: dead units)."""

    name = "activations"
    cost = 1
    needs_forward = True

    def applies(self, group):
        return group.is_mlp   # reads the dense layers' taps

    def _compute(self, ctx):
        taps = ctx.forward()[2]
        out = {}
        for layer in ctx.g.layers:
            i = layer.index
            for kind in ("pre", "act"):
                t = taps.get(f"{kind}{i}")
                if t is None:  # the output layer has no activation (its logits are the logits probe's)
                    continue
                out[f"{kind}{i}.mean"] = t.mean(dim=(1, 2))
                out[f"{kind}{i}.std"] = t.std(dim=(1, 2))
                out[f"{kind}{i}.max_abs"] = t.abs().amax(dim=(1, 2))
                if kind == "act":
                    dead = (t == 0).all(dim=1)            # (M, units)
                    out[f"act{i}.dead_frac"] = dead.to(t.dtype).mean(dim=1)
        return out
