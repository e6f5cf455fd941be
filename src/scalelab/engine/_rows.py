"""Token models in the engine: frozen tables and the row-sparse step.

A row-sparse optimizer family (``lazy_adam``, ``sparse_sgd``; see ``optim._rows``) updates a
lookup table on the rows the batch used only. The step gathers those rows before the
forward (ids → unique rows over all M models of the (M·V, d) table), runs the forward on the
gathered copy and lets autograd differentiate with respect to it: the gradient is (U, d) for
the U used rows, never the dense (M, V, d) tensor that is zero almost everywhere. The
optimizer then scatters the update back. Loss, outputs and the other gradients are those of
the ordinary step (the forward reads the same values).
"""

from __future__ import annotations

import torch

from ..models import Pass


def trainable(model, params: dict) -> dict:
    """The parameters the optimizer steps (a frozen table has no gradient and no state)."""
    frozen = {q.name for q in model.param_list() if not q.trainable}
    for n in frozen:
        params[n].requires_grad_(False)
    return {k: v for k, v in params.items() if k not in frozen}


def row_tables(model, family) -> dict[str, object]:
    """Trainable lookup tables a row-sparse family steps by rows: name -> its layer."""
    if family.row_kernel is None:
        return {}
    return {q.name: layer for layer in model.layers for q in layer.params() if q.rows and q.trainable}


def gather_rows(params: dict, tables: dict, ids: torch.Tensor) -> tuple[dict, dict]:
    """For each table, the rows the ids (M, b, T) use: (Pass.rows entries, flat row indices)."""
    M = ids.shape[0]
    entries, rows = {}, {}
    for name, layer in tables.items():
        W = params[name]
        flat = ids + torch.arange(M, device=ids.device).view(M, 1, 1) * layer.vocab
        used, local = torch.unique(flat, return_inverse=True)
        table = W.detach().reshape(M * layer.vocab, layer.dim).index_select(0, used).requires_grad_()
        entries[name] = (table, local)
        rows[name] = used
    return entries, rows


def row_sparse_step(g, x: torch.Tensor, y: torch.Tensor):
    """One training step of group ``g`` whose tables train by rows: (loss, outputs)."""
    entries, rows = gather_rows(g.params, g.row_tables, x)
    names = g.opt.names
    leaves = [entries[n][0] if n in entries else g.params[n] for n in names]
    out = g.model.forward(g.params, x, Pass(g.M, True, g.buffers, None, rows=entries))
    loss = g.loss_per_sample(out, y).mean(1)
    if g.l2 is not None:
        from .. import optim as _optim
        loss = loss + _optim.l2_penalty(g.params, g.l2)
    grads = torch.autograd.grad(loss.sum(), leaves)
    g.grads = dict(zip(names, grads))
    g.grad_rows = rows   # a table's gradient is (U, d) on these flat rows of its (M·V, d) view: probes need them
    g.opt.step(g.params, g.grads, rows)
    return loss, out
