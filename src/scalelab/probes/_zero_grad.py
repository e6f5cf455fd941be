from __future__ import annotations

import torch

from ._base import Probe


class ZeroGradient(Probe):
    """The share of probe-batch training samples whose loss gradient is exactly zero.

    A sample's loss depends on the parameters only through its own output row, so its
    gradient is zero exactly when d loss / d output is zero (e.g. a clipped probability).
    """

    name = "zero_grad"
    SHARE = "share"
    quantities = (SHARE,)
    cost = 2
    needs_forward = True

    def _compute(self, ctx):
        _, y, _, out, _ = ctx.forward()
        with torch.enable_grad():
            o = out.detach().requires_grad_()
            per = ctx.view.loss_per_sample(o, y)
            (d_out,) = torch.autograd.grad(per.sum(), o)
        zero = (d_out == 0).all(dim=-1)                          # (M, n)
        return {self.SHARE: zero.to(out.dtype).mean(1)}
