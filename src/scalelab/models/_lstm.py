"""A long short-term memory layer, written once as its single-model computation.

Inputs and outputs stay flat like every other layer's: a sequence of ``steps`` vectors of
``features`` values arrives as (batch, steps·features), time-major within a row, and leaves
as (batch, units) — the last hidden state — or, with ``return_sequences``, as
(batch, steps·units). The stacked forward is ``vmap`` of :meth:`Lstm.forward_one`, and
autograd supplies the gradients (no hand-written backward pass).

Gate order and initialisers follow Keras (``keras.layers.LSTM``): one kernel (features, 4·units)
and one recurrent kernel (units, 4·units) with gate columns [input | forget | cell | output],
one bias (4·units), sigmoid gates and tanh cell. Under the Keras profile the kernel draws from
the model's init scheme (Glorot-uniform), the recurrent kernel is orthogonal and the forget
gate's bias starts at 1 (``unit_forget_bias``); a constant ``bias_init`` sets the other gates'.
torch.nn.LSTM has the same gate order with the kernels transposed and two biases (their sum is
this one); under ``bias_init = "torch_default"`` every parameter draws from U(±1/√units), as
torch does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._base import Layer, Param
from ._init import init_kernel, init_orthogonal


@dataclass(frozen=True)
class Lstm(Layer):
    """``units`` hidden units over sequences of ``steps`` steps of ``n_in // steps`` features.

    Shapes (one model): x (batch, steps·features) → (batch, units), or (batch, steps·units)
    with ``return_sequences``."""

    index: int
    n_in: int
    units: int
    steps: int
    return_sequences: bool = False
    kind = "lstm"
    weighted = True

    def __post_init__(self):
        if self.steps < 1 or self.n_in % self.steps:
            raise ValueError(f"lstm: {self.n_in} input values are not {self.steps} steps of equal width; "
                             f"set steps to a divisor of {self.n_in}")

    @property
    def features(self) -> int:
        return self.n_in // self.steps

    @property
    def weight(self) -> str:
        return f"lstm{self.index}.W"

    @property
    def recurrent(self) -> str:
        return f"lstm{self.index}.U"

    @property
    def bias(self) -> str:
        return f"lstm{self.index}.b"

    def params(self):
        H = self.units
        return [Param(self.weight, (self.features, 4 * H), True, self.index),
                Param(self.recurrent, (H, 4 * H), True, self.index),
                Param(self.bias, (1, 4 * H), False, self.index)]

    def init(self, rng, scheme, scale, bias_init):
        F, H = self.features, self.units
        if bias_init == "torch_default":
            lim = 1.0 / math.sqrt(H)
            return {self.weight: rng.uniform(-lim, lim, size=(F, 4 * H)) * scale,
                    self.recurrent: rng.uniform(-lim, lim, size=(H, 4 * H)),
                    self.bias: rng.uniform(-lim, lim, size=(1, 4 * H))}
        # zeros, or a constant: Keras's unit_forget_bias sets the forget gate's to 1 either way
        bias = np.full((1, 4 * H), 0.0 if isinstance(bias_init, str) else float(bias_init))
        bias[0, H:2 * H] = 1.0
        return {self.weight: init_kernel(scheme, F, 4 * H, rng) * scale,
                self.recurrent: init_orthogonal(rng, (H, 4 * H)),
                self.bias: bias}

    def forward_one(self, params, x):
        H = self.units
        seq = x.reshape(x.shape[0], self.steps, self.features)
        # the input projection for all steps at once; only the recurrence is sequential
        xw = torch.matmul(seq, params[self.weight]) + params[self.bias]
        h = x.new_zeros(x.shape[0], H)
        c = x.new_zeros(x.shape[0], H)
        outs = []
        # unbind, not xw[:, t]: its backward stacks the steps' gradients once, where each
        # select's backward zero-filled a whole (batch, steps, 4·units) gradient (the same
        # numbers: the other steps' entries were exact zeros)
        for xw_t in xw.unbind(1):
            z = xw_t + h @ params[self.recurrent]
            i, f, g, o = z.split(H, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            if self.return_sequences:
                outs.append(h)
        return torch.cat(outs, dim=1) if self.return_sequences else h

    @classmethod
    def from_config(cls, index, n_in, cfg):
        cfg = dict(cfg)
        units = cfg.pop("units")
        steps = cfg.pop("steps")
        return cls(index, n_in, units, steps, **cfg)

    def n_out(self, n_in):
        return self.units * (self.steps if self.return_sequences else 1)
