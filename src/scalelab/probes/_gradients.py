from __future__ import annotations

import torch

from . import _records as records
from ._base import Probe


def per_model_sq(view, k: str, gr: torch.Tensor) -> torch.Tensor:
    """The squared norm of parameter ``k``'s gradient per model, (M,). A table a row-sparse
    optimizer steps by rows has its gradient as (U, d) rows of the flat (M·V, d) table
    (``view.grad_rows``): row r belongs to model r // V, and the dense (M, V, d) gradient is
    zero off those rows, so the per-model sum over its rows is the dense gradient's norm."""
    rows = getattr(view, "grad_rows", {}).get(k)
    if rows is None:
        return gr.pow(2).sum(dim=tuple(range(1, gr.dim())))
    V = view.params[k].shape[1]
    return torch.zeros(view.M, dtype=gr.dtype, device=gr.device).index_add_(0, rows // V, gr.pow(2).sum(1))


class Gradients(records.Gradients, Probe):
    """Per parameter tensor, the norm of this step's batch gradient (what the optimizer
    got), and the total norm over the model. A row-sparse table's (U, d) row gradient
    counts per model (see :func:`per_model_sq`)."""

    phase = "after"
    cost = 0

    def _compute(self, ctx):
        out, total = {}, None
        for k, gr in ctx.view.grads.items():
            sq = per_model_sq(ctx.view, k, gr)
            out[self.NORM.format(param=k)] = sq.sqrt()
            total = sq if total is None else total + sq
        out[self.TOTAL_NORM] = total.sqrt()
        return out
