from __future__ import annotations

import torch

from . import _records as records
from ._base import Probe, plain_mlp, rms


class PreactivationStep(records.PreactivationStep, Probe):
    """The step as each layer's output sees it: on the probe batch, the change of layer l's
    pre-activations caused by its own update, ΔZ_l = h_{l-1}·ΔW_l + Δb_l (h_{l-1}: the
    layer's input before the step), as RMS and relative to the RMS of Z_l."""

    phase = "after"
    cost = 2
    needs_forward = True
    needs_params_before = True

    def applies(self, view):
        # reads the weighted layers' pre-activation taps: the engine's MLP, or a watched model whose
        # weighted layers all hand one
        return plain_mlp(view) or (getattr(view, "flat_taps", False) and all("pre" in l.taps for l in view.weighted))

    def _compute(self, ctx):
        view = ctx.view
        x, _, taps, _, _ = ctx.forward()
        out = {}
        for layer in view.weighted:
            # the layer's input: tapped where the model has layers in between (a watched model), else
            # the previous activation (the engine's MLP)
            h = taps.get(f"in{layer.index}")
            if h is None:
                h = x if layer.index == 0 else taps[f"act{layer.index - 1}"]
            dW = view.params[layer.weight] - ctx.params_before[layer.weight]
            db = view.params[layer.bias] - ctx.params_before[layer.bias]
            dz = torch.baddbmm(db, h, dW)
            step = rms(dz, (1, 2))
            out[self.RMS_CHANGE.format(layer=layer.index)] = step
            out[self.REL_CHANGE.format(layer=layer.index)] = step / rms(taps[f"pre{layer.index}"], (1, 2)).clamp_min(1e-30)
        return out
