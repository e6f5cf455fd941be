from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ._base import Layer, Param, Pass
from ._init import init_bias, init_kernel


@dataclass(frozen=True)
class Conv(Layer):
    """A same-padded k×k convolution over image-shaped activations (M, batch, C, H, W). Its
    kernel is stored as (c_in·k·k, c_out) per model, the layout of a dense kernel, so
    optimizers and per-model hyperparameters see 3-D tensors. All models run as one grouped
    convolution: model m's samples sit in channel block m of a (batch, M·C, H, W) tensor."""

    index: int
    c_in: int
    c_out: int
    k: int = 3
    kind = "conv"
    weighted = True

    @property
    def weight(self) -> str:
        return f"conv{self.index}.W"

    @property
    def bias(self) -> str:
        return f"conv{self.index}.b"

    @property
    def fan_in(self) -> int:
        return self.c_in * self.k * self.k

    @property
    def fan_out(self) -> int:   # Keras's Glorot counts the receptive field on both sides
        return self.c_out * self.k * self.k

    def params(self):
        return [Param(self.weight, (self.fan_in, self.c_out), True, self.index),
                Param(self.bias, (1, self.c_out), False, self.index)]

    def init(self, rng, scheme, scale, bias_init):
        return {self.weight: init_kernel(scheme, self.fan_in, self.fan_out, rng, (self.fan_in, self.c_out)) * scale,
                self.bias: init_bias(bias_init, self.fan_in, self.c_out, rng)}

    def forward_one(self, params, x):
        w = params[self.weight].T.reshape(self.c_out, self.c_in, self.k, self.k)
        return F.conv2d(x, w, params[self.bias].reshape(-1), padding=self.k // 2)

    def forward(self, params, x, p: Pass):
        M, b, _, hh, ww = x.shape
        h = x.transpose(0, 1).reshape(b, M * self.c_in, hh, ww)
        w = params[self.weight].transpose(1, 2).reshape(M * self.c_out, self.c_in, self.k, self.k)
        h = F.conv2d(h, w, params[self.bias].reshape(-1), padding=self.k // 2, groups=M)
        return h.view(b, M, self.c_out, hh, ww).transpose(0, 1)


@dataclass(frozen=True)
class ToImage(Layer):
    """Flat inputs (M, batch, C·H·W) seen as images (M, batch, C, H, W)."""

    shape: tuple[int, int, int]
    kind = "to_image"

    def forward_one(self, params, x):
        return x.reshape(x.shape[0], *self.shape)

    def forward(self, params, x, p: Pass):
        return x.reshape(x.shape[0], x.shape[1], *self.shape)


@dataclass(frozen=True)
class FromImage(Layer):
    """Per-pixel outputs (M, batch, C, H, W) flattened back to (M, batch, C·H·W), in the
    memory layout the grouped convolutions left (batch-major)."""

    kind = "from_image"

    def forward_one(self, params, x):
        return x.reshape(x.shape[0], -1)

    def forward(self, params, x, p: Pass):
        return x.transpose(0, 1).reshape(x.shape[1], x.shape[0], -1).transpose(0, 1)
