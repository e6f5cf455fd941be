from __future__ import annotations

from ._base import Probe


class Gradients(Probe):
    """Per parameter tensor, the norm of this step's batch gradient (what the optimizer
    got), and the total norm over the model."""

    name = "gradients"
    NORM, TOTAL_NORM = "{param}.norm", "total.norm"
    quantities = (NORM, TOTAL_NORM)
    phase = "after"
    cost = 0

    def _compute(self, ctx):
        out, total = {}, None
        for k, gr in ctx.view.grads.items():
            sq = gr.pow(2).sum(dim=(1, 2))
            out[self.NORM.format(param=k)] = sq.sqrt()
            total = sq if total is None else total + sq
        out[self.TOTAL_NORM] = total.sqrt()
        return out
