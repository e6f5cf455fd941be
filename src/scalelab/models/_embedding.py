"""Token models: an embedding table and sequence pooling, each written once per model.

Inputs of a token model are integer ids (batch, steps), kept exact as int64 from the data
file to the lookup (the engine gathers and never scales or casts them; see
``StackedGroup.inputs``). The embedding layer turns them into the flat (batch, steps·dim)
rows every other layer takes, time-major within a row, so ``lstm`` (with ``steps``) and
``pool`` read them as a sequence.

Padding: id ``padding`` (0 by default) is "no token". Its positions give zero vectors and
send no gradient to the table, as torch.nn.Embedding(padding_idx=...) does with its zero
padding row; the layer also records which positions hold a real token (``Pass.mask``) so
that ``pool`` averages over real tokens only and takes the last real one. The LSTM does not
mask (as Keras without ``mask_zero``): pad sequences at the front, as Keras's
``pad_sequences`` does by default, so its last state has read every token.

The table is stacked (M, V, d) like every parameter. Its forward is one lookup into the
table seen as (M·V, d), with model m's ids offset by m·V; tests check it against
``vmap(forward_one)`` and torch.nn.Embedding per model. For row-sparse updates (lazy Adam,
sparse SGD) the engine gathers the rows a batch uses and hands them in ``Pass.rows``; the
lookup then reads those, and autograd gives the gradient of those rows only (U, d) instead
of a dense (M, V, d) gradient that is zero almost everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._base import Layer, Param, Pass


@dataclass(frozen=True)
class Embedding(Layer):
    """A ``vocab`` × ``dim`` lookup table over sequences of ``steps`` token ids.

    Shapes (one model): ids (batch, steps) → (batch, steps·dim). ``trainable = False``
    freezes the table (no gradient, no optimizer state). Initial values: U(±0.05) as Keras's
    Embedding, or N(0, 1) as torch's under ``bias_init = "torch_default"`` (the torch
    profile); the padding row starts at zero either way."""

    index: int
    steps: int
    vocab: int
    dim: int
    padding: int | None = 0
    trainable: bool = True
    kind = "embedding"

    def __post_init__(self):
        if self.vocab < 1 or self.dim < 1:
            raise ValueError(f"embedding: vocab ({self.vocab}) and dim ({self.dim}) must be at least 1")
        if self.padding is not None and not 0 <= self.padding < self.vocab:
            raise ValueError(f"embedding: padding id {self.padding} is outside the vocabulary 0..{self.vocab - 1}")

    @property
    def weight(self) -> str:
        return f"embedding{self.index}.W"

    def params(self):
        return [Param(self.weight, (self.vocab, self.dim), trainable=self.trainable, rows=True)]

    def init(self, rng, scheme, scale, bias_init):
        shape = (self.vocab, self.dim)
        W = rng.normal(0.0, 1.0, size=shape) if bias_init == "torch_default" else rng.uniform(-0.05, 0.05, size=shape)
        if self.padding is not None:
            W[self.padding] = 0.0
        return {self.weight: W}

    def forward_one(self, params, x):
        ids = x.long()
        out = F.embedding(ids, params[self.weight])
        if self.padding is not None:
            out = out * (ids != self.padding).unsqueeze(-1).to(out.dtype)
        return out.reshape(x.shape[0], -1)

    def forward(self, params, x: torch.Tensor, p: Pass):
        ids = x.long()
        M, b, T = ids.shape
        if p.rows is not None and self.weight in p.rows:
            table, local = p.rows[self.weight]       # the batch's rows only (row-sparse updates)
            out = F.embedding(local, table)
        else:
            W = params[self.weight]
            offsets = torch.arange(M, device=ids.device).view(M, 1, 1) * self.vocab
            out = F.embedding(ids + offsets, W.reshape(M * self.vocab, self.dim))
        if self.padding is not None:
            mask = ids != self.padding
            out = out * mask.unsqueeze(-1).to(out.dtype)
            p.mask = mask
        return out.reshape(M, b, T * self.dim)

    @classmethod
    def from_config(cls, index, n_in, cfg):
        cfg = dict(cfg)
        return cls(index, n_in, cfg.pop("vocab"), cfg.pop("dim"), **cfg)

    def n_out(self, n_in):
        return self.steps * self.dim


POOL_MODES = ("mean", "last")


@dataclass(frozen=True)
class Pool(Layer):
    """Sequence pooling: (batch, steps·features) → (batch, features), the ``mean`` over the
    steps or the ``last`` step. After an embedding with padding, only real tokens count
    (``Pass.mask``): the mean over them, the last of them. ``forward_one`` is the one-model
    computation with the mask as an argument, and ``forward`` is its ``vmap`` over the models
    (the mask passed along), so the stacked and the per-model results are one computation."""

    index: int
    n_in: int
    steps: int
    mode: str = "mean"
    kind = "pool"

    def __post_init__(self):
        if self.mode not in POOL_MODES:
            raise ValueError(f"pool: mode {self.mode!r}; use one of {', '.join(POOL_MODES)}")
        if self.steps < 1 or self.n_in % self.steps:
            raise ValueError(f"pool: {self.n_in} input values are not {self.steps} steps of equal width; "
                             f"set steps to a divisor of {self.n_in}")

    def forward_one(self, params, x, mask=None):
        """ONE model: x (batch, steps·features); ``mask`` (batch, steps), True where a real
        token stands (None: every step is one)."""
        seq = x.reshape(x.shape[0], self.steps, -1)
        if mask is None:
            return seq.mean(1) if self.mode == "mean" else seq[:, -1]
        if self.mode == "mean":
            w = mask.to(x.dtype)
            return (seq * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)
        # the last real token: the largest position whose mask is set (0 for an all-padding row)
        pos = torch.arange(self.steps, device=x.device)
        last = (mask.long() * pos).argmax(-1)                 # (batch,)
        return seq.gather(1, last.view(-1, 1, 1).expand(-1, 1, seq.shape[-1])).squeeze(1)

    def forward(self, params, x, p: Pass):
        mask = p.mask if p.mask is not None and p.mask.shape[-1] == self.steps else None
        if mask is None:
            return torch.func.vmap(lambda v: self.forward_one({}, v))(x)
        return torch.func.vmap(lambda v, m: self.forward_one({}, v, m))(x, mask)

    @classmethod
    def from_config(cls, index, n_in, cfg):
        cfg = dict(cfg)
        return cls(index, n_in, cfg.pop("steps"), **cfg)

    def n_out(self, n_in):
        return n_in // self.steps

