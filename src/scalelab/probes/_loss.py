from __future__ import annotations

from ._base import Probe


class Loss(Probe):
    """The loss on the fixed probe batch before the step (comparable across steps) and the
    step's own batch loss."""

    name = "loss"
    phase = "after"
    cost = 0
    needs_forward = True

    def _compute(self, ctx):
        per = ctx.forward()[4]
        return {"probe_batch": per.mean(1), "batch": ctx.loss}
