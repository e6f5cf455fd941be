from __future__ import annotations

from . import _records as records
from ._base import Probe


class Loss(records.Loss, Probe):
    """The loss on the fixed probe batch before the step (comparable across steps) and the
    step's own batch loss."""

    phase = "after"
    cost = 0
    needs_forward = True

    def _compute(self, ctx):
        per = ctx.forward()[4]
        return {self.PROBE_BATCH: per.mean(1), self.BATCH: ctx.loss}
