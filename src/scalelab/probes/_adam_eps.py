from __future__ import annotations

import torch

from ..optim import adam_step_scalars
from ._base import Probe, median


class AdamEps(Probe):
    """How much of Adam's denominator a·√v + eps is eps rather than the gradient's own
    scale, per parameter tensor after the step: the median over entries of eps / (a·√v +
    eps), and the fraction of entries where eps is the larger part. Where eps dominates,
    Adam's step is lr·m/eps (gradient-proportional), not lr·sign-like."""

    name = "adam_eps"
    SHARE_MEDIAN, DOMINATED_FRAC = "{param}.eps_share_median", "{param}.eps_dominated_frac"
    quantities = (SHARE_MEDIAN, DOMINATED_FRAC)
    phase = "after"
    cost = 1

    def applies(self, group):
        return group.opt.family == "adam"

    def _compute(self, ctx):
        g = ctx.g
        opt = g.opt
        out = {}
        for k, v in zip(opt.names, opt.v):
            hp = g.hp
            _, a = adam_step_scalars(hp["b1"][k], hp["b2"][k], hp["keras"][k], float(opt.t))
            grad_part = a * v.sqrt()
            eps = hp["eps"][k]
            share = eps / (grad_part + eps)
            out[self.SHARE_MEDIAN.format(param=k)] = median(share.flatten(1))
            out[self.DOMINATED_FRAC.format(param=k)] = (eps > grad_part).to(v.dtype).flatten(1).mean(1)
        return out
