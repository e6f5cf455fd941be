from __future__ import annotations

import torch

from ._base import Probe, plain_mlp, rms


class ErrorSignal(Probe):
    """The backpropagated error signal per weighted layer: the RMS (over probe samples and
    units) of d(Σ per-sample loss)/dz_l, the gradient of the summed loss with respect to
    layer l's pre-activations. A layer's weight gradient is its input times this signal;
    where it shrinks by orders of magnitude from the head toward the input, the first
    layers get almost no learning signal (vanishing gradients)."""

    name = "error_signal"
    RMS = "pre{layer}.error_rms"
    quantities = (RMS,)
    cost = 2

    def applies(self, view):
        return plain_mlp(view)

    def compute(self, ctx):
        return self._compute(ctx)

    def _compute(self, ctx):
        view = ctx.view
        x, y = ctx.probe_batch()
        params = {k: p.detach() for k, p in view.params.items()}
        with torch.enable_grad():
            x = x.detach().requires_grad_()    # so that every pre-activation is in the graph
            taps: dict = {}
            per, _ = view.per_sample(params, x, y, taps)
            zs = [taps[f"pre{layer.index}"] for layer in view.weighted]
            grads = torch.autograd.grad(per.sum(), zs)
        return {self.RMS.format(layer=layer.index): rms(g.detach(), (1, 2)) for layer, g in zip(view.weighted, grads)}
