from __future__ import annotations

import torch

from . import _records as records
from ._base import Probe


class ZeroGradient(records.ZeroGradient, Probe):
    """The share of probe-batch training samples whose loss gradient is exactly zero, and
    (classification) that share split by whether the sample is classified correctly: the
    share of all probe samples that are correct *and* have a zero gradient, and the share
    that are misclassified *and* have a zero gradient.

    A sample's loss depends on the parameters only through its own output row, so its
    gradient is zero exactly when d loss / d output is zero (e.g. a clipped probability).
    A confidently correct sample has a zero gradient in float32 too (its probability
    rounds to 1, or sits above 1 − clip): that is training done, not a fault. Only
    misclassified samples with a zero gradient (the clip's lower tail) cannot be learned.
    """

    cost = 2
    needs_forward = True

    def _compute(self, ctx):
        _, y, _, out, _ = ctx.forward()
        with torch.enable_grad():
            o = out.detach().requires_grad_()
            per = ctx.view.loss_per_sample(o, y)
            (d_out,) = torch.autograd.grad(per.sum(), o)
        zero = (d_out == 0).all(dim=-1)                          # (M, n)
        res = {self.SHARE: zero.to(out.dtype).mean(1)}
        if ctx.view.classification:
            correct = out.argmax(-1) == y
            res[self.SHARE_CORRECT] = (zero & correct).to(out.dtype).mean(1)
            res[self.SHARE_WRONG] = (zero & ~correct).to(out.dtype).mean(1)
        return res
