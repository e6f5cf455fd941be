from __future__ import annotations

from ..optim._chains import adam_step_scalars
from . import _records as records
from ._base import Probe, median


class AdamEps(records.AdamEps, Probe):
    """How much of Adam's denominator a·√v + eps is eps rather than the gradient's own
    scale, per parameter tensor after the step: the median over entries of eps / (a·√v +
    eps), and the fraction of entries where eps is the larger part. Where eps dominates,
    Adam's step is lr·m/eps (gradient-proportional), not lr·sign-like."""

    phase = "after"
    cost = 1

    def applies(self, view):
        return view.optimizer_family == "adam"

    def _compute(self, ctx):
        view = ctx.view
        b1, b2, keras, eps_ = (view.hyperparameter(n) for n in ("b1", "b2", "keras", "eps"))
        out = {}
        for k, v in view.optimizer_state("v").items():
            _, a = adam_step_scalars(b1[k], b2[k], keras[k], float(view.optimizer_step))
            grad_part = a * v.sqrt()
            eps = eps_[k]
            share = eps / (grad_part + eps)
            out[self.SHARE_MEDIAN.format(param=k)] = median(share.flatten(1))
            out[self.DOMINATED_FRAC.format(param=k)] = (eps > grad_part).to(v.dtype).flatten(1).mean(1)
        return out
