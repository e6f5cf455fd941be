from __future__ import annotations

import torch

from . import _records as records
from ._base import Probe, plain_mlp, rms


class ErrorSignal(records.ErrorSignal, Probe):
    """The backpropagated error signal per weighted layer: the RMS (over probe samples and
    units) of d(Σ per-sample loss)/dz_l, the gradient of the summed loss with respect to
    layer l's pre-activations. A layer's weight gradient is its input times this signal;
    where it shrinks by orders of magnitude from the head toward the input, the first
    layers get almost no learning signal (vanishing gradients)."""

    cost = 2

    def applies(self, view):
        # the engine's own MLP: its taps are the tensors of its graph; a watched model's taps are
        # reshaped copies that lie off the path to the loss, so no gradient reaches them
        return plain_mlp(view) and not getattr(view, "flat_taps", False)

    def compute(self, ctx):
        return self._compute(ctx)

    def _compute(self, ctx):
        view = ctx.view
        x, y = ctx.probe_batch()
        # detached copies that require grad: every pre-activation is in the graph, nothing is changed
        params = {k: p.detach().requires_grad_() for k, p in view.params.items()}
        with torch.enable_grad():
            taps: dict = {}
            per, _ = view.per_sample(params, x, y, taps)
            layers = [layer for layer in view.weighted if isinstance(taps.get(f"pre{layer.index}"), torch.Tensor)
                      and taps[f"pre{layer.index}"].requires_grad]
            if not layers:   # a watched model whose taps are copies outside the graph
                return {}
            grads = torch.autograd.grad(per.sum(), [taps[f"pre{layer.index}"] for layer in layers], allow_unused=True)
        return {self.RMS.format(layer=layer.index): rms(g.detach(), (1, 2))
                for layer, g in zip(layers, grads) if g is not None}
