from __future__ import annotations

from dataclasses import dataclass

import torch

from ._base import Layer, Param, Pass
from ._init import init_bias, init_kernel


@dataclass(frozen=True)
class Dense(Layer):
    """A dense layer: kernel (fan_in, fan_out) and bias (1, fan_out) per model, so M models
    run as one batched matmul (``baddbmm``). ``index`` is its position among the model's
    weighted layers (0 = first); its output is tapped as ``pre{index}``."""

    index: int
    fan_in: int
    fan_out: int
    kind = "dense"
    taps = ("pre",)
    weighted = True

    @property
    def weight(self) -> str:
        return f"dense{self.index}.W"

    @property
    def bias(self) -> str:
        return f"dense{self.index}.b"

    def params(self):
        return [Param(self.weight, (self.fan_in, self.fan_out), True, self.index),
                Param(self.bias, (1, self.fan_out), False, self.index)]

    def init(self, rng, scheme, scale, bias_init):
        return {self.weight: init_kernel(scheme, self.fan_in, self.fan_out, rng) * scale,
                self.bias: init_bias(bias_init, self.fan_in, self.fan_out, rng)}

    def forward_one(self, params, x):
        return torch.addmm(params[self.bias], x, params[self.weight])

    def forward(self, params, x, p: Pass):
        z = torch.baddbmm(params[self.bias], x, params[self.weight])
        if p.taps is not None:
            p.taps[f"pre{self.index}"] = z
        return z

    @classmethod
    def from_config(cls, index, n_in, cfg):
        return cls(index, n_in, cfg["units"])

    def n_out(self, n_in):
        return self.fan_out
