from __future__ import annotations

from . import _records as records
from ._base import Probe


class UpdateRatio(records.UpdateRatio, Probe):
    """Per parameter tensor, the size of this step's update: ‖ΔW‖ / ‖W‖ and the RMS of ΔW."""

    phase = "after"
    cost = 1
    needs_params_before = True

    def _compute(self, ctx):
        out = {}
        for k, before in ctx.params_before.items():
            delta = ctx.view.params[k] - before
            norm_w = before.pow(2).sum(dim=(1, 2)).sqrt()
            norm_d = delta.pow(2).sum(dim=(1, 2)).sqrt()
            out[self.RATIO.format(param=k)] = norm_d / norm_w.clamp_min(1e-30)
            out[self.RMS.format(param=k)] = delta.pow(2).mean(dim=(1, 2)).sqrt()
        return out
