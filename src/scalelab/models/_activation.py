from __future__ import annotations

from dataclasses import dataclass

import torch

from ._base import Layer, Pass

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


@dataclass(frozen=True)
class Activation(Layer):
    """An elementwise activation after weighted layer ``index``; its output is tapped as ``act{index}``."""

    index: int
    fn: str = "relu"
    kind = "activation"
    taps = ("act",)

    def forward_one(self, params, x):
        return ACTIVATIONS[self.fn](x)

    def forward(self, params, x, p: Pass):
        h = ACTIVATIONS[self.fn](x)
        if p.taps is not None:
            p.taps[f"act{self.index}"] = h
        return h

    @classmethod
    def from_config(cls, index, n_in, cfg):
        return cls(index, **cfg)
