"""Row-sparse updates of lookup tables: only the rows a batch used are read and written.

A token model's embedding table is (M, V, d), but one batch reads a few hundred rows of it.
A dense optimizer step reads and writes the whole table and its state on every step: dense
Adam touches p, g, m, v (read) and p, m, v (write), 28 bytes per float32 value, O(V·d) per
step whatever the batch. The row-sparse families below touch only the U rows in the batch,
O(U·d), given the gradient of those rows alone (the engine gathers them before the
forward, so autograd never forms the dense (M, V, d) gradient; see ``engine._rows``).

Which change the mathematics, and how:

* ``sparse_sgd``: p[r] -= lr·g[r] on the used rows. Dense SGD moves an unused row by
  lr·0 = 0, so this equals dense SGD exactly; only with weight decay would dense SGD also
  shrink the unused rows, which this does not (decay applies to used rows only).
* ``lazy_adam`` (TensorFlow Addons' LazyAdam): m, v and p of the used rows are updated as
  dense Adam updates them, with the global step's bias correction; unused rows keep m, v
  and p unchanged. Dense Adam instead decays m and v of every unused row (m ← β1·m,
  v ← β2·v) and keeps moving it by c·m/(a·√v + ε) ≠ 0 after its last use: a row's momentum
  keeps acting for ~1/(1−β1) steps after the row left the batches. Lazy Adam drops that
  coasting and, when the row comes back, its moments have not decayed over the gap (its
  update is larger than dense Adam's after a gap). A row used at every step sees exactly
  dense Adam's arithmetic (tested bit for bit).
* ``sparse_adam``: torch.optim.SparseAdam over torch's sparse gradients. It is lazy Adam
  with Keras's ε placement (lr·√bc2/bc1 · m/(√v + ε)); its moment update m + (g − m)(1 − β1)
  rounds differently from β1·m + (1 − β1)·g. The engine trains it as ``lazy_adam`` (same
  mathematics; tests compare it with torch.optim.SparseAdam); the benchmark also times
  torch's own sparse-gradient path (COO gradient, coalesce, SparseAdam).

Dense parameters (the LSTM's and the head's) of these families take the dense kernels:
LazyAdam is Adam for them, sparse SGD is SGD.
"""

from __future__ import annotations

import torch


def _per_row(h, model_of_row: torch.Tensor):
    """A per-model hyperparameter (M, 1, 1) (or a float) as per-row values (U, 1)."""
    if isinstance(h, torch.Tensor) and h.numel() > 1:
        return h.reshape(-1)[model_of_row].unsqueeze(1)
    return h.reshape(()) if isinstance(h, torch.Tensor) else h


def lazy_adam_rows(p, rows, g, m, v, lr, b1, b2, eps, wd, c, a):
    """Adam on rows ``rows`` of the table p (M, V, d) seen as (M·V, d); g (U, d) holds those
    rows' gradients (each row once). The per-element arithmetic is :func:`adam_kernel`'s."""
    M, V, d = p.shape
    pf, mf, vf = p.view(M * V, d), m.view(M * V, d), v.view(M * V, d)
    owner = rows // V
    lr, b1, b2, eps, wd, c, a = (_per_row(h, owner) for h in (lr, b1, b2, eps, wd, c, a))
    pr = pf.index_select(0, rows)
    m_new = mf.index_select(0, rows) * b1 + g * (1 - b1)
    v_new = vf.index_select(0, rows) * b2 + g * g * (1 - b2)
    u = c * m_new / (a * v_new.sqrt() + eps)
    u = u + wd * pr
    pf.index_copy_(0, rows, pr + u * (-lr))
    mf.index_copy_(0, rows, m_new)
    vf.index_copy_(0, rows, v_new)


def sgd_rows(p, rows, g, lr, wd):
    """SGD on rows ``rows`` of the table p (M, V, d); :func:`sgd_kernel`'s arithmetic."""
    M, V, d = p.shape
    pf = p.view(M * V, d)
    owner = rows // V
    lr, wd = _per_row(lr, owner), _per_row(wd, owner)
    pr = pf.index_select(0, rows)
    pf.index_copy_(0, rows, pr + (g + wd * pr) * (-lr))


def sparse_adam_torch(p, rows, g, m, v, lr, b1, b2, eps, t):
    """torch.optim.SparseAdam's arithmetic on rows of a (V, d) table (one model), written
    out: the reference the tests compare :func:`lazy_adam_rows` (Keras ε) with."""
    m_old, v_old = m[rows], v[rows]
    m_up = (g - m_old) * (1 - b1)
    v_up = (g * g - v_old) * (1 - b2)
    m[rows] = m_old + m_up
    v[rows] = v_old + v_up
    step = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
    p[rows] = p[rows] - step * (m_up + m_old) / ((v_up + v_old).sqrt() + eps)
