from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F

from ._base import Layer, Param, Pass


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization over ``channels`` (the features of a dense layer, or conv
    channels): per-model batch statistics in training, per-model running averages in
    evaluation. Its scale and shift take no per-layer multiplier. The running averages are
    explicit state: buffers ``bn{index}.gamma.mean`` / ``.var``, flat over models (M·C,),
    which is what one ``batch_norm`` call over all models' channels reads and updates."""

    index: int
    channels: int
    momentum: float = 0.99      # share of the running average kept per step (Keras's convention)
    eps: float = 1e-3
    kind = "batchnorm"

    @property
    def gamma(self) -> str:
        return f"bn{self.index}.gamma"

    @property
    def beta(self) -> str:
        return f"bn{self.index}.beta"

    def params(self):
        return [Param(self.gamma, (1, self.channels)), Param(self.beta, (1, self.channels))]

    def buffers(self):
        return {self.gamma + ".mean": ((self.channels,), 0.0), self.gamma + ".var": ((self.channels,), 1.0)}

    def init(self, rng, scheme, scale, bias_init):
        return {self.gamma: np.ones((1, self.channels)), self.beta: np.zeros((1, self.channels))}

    def forward_one(self, params, x):
        """Training-mode normalization of one model's batch (no running averages)."""
        return F.batch_norm(x, None, None, params[self.gamma].reshape(-1), params[self.beta].reshape(-1), True,
                            0.0, self.eps)

    def forward(self, params, x, p: Pass):
        M, b = x.shape[0], x.shape[1]
        image = x.dim() == 5
        flat = x.transpose(0, 1).reshape(b, M * self.channels, *x.shape[3:]) if image else \
            x.transpose(0, 1).reshape(b, M * self.channels)
        flat = F.batch_norm(flat, p.buffers[self.gamma + ".mean"], p.buffers[self.gamma + ".var"],
                            params[self.gamma].reshape(-1), params[self.beta].reshape(-1), p.training,
                            1.0 - self.momentum, self.eps)
        return flat.view(b, M, *x.shape[2:]).transpose(0, 1)

    @classmethod
    def from_config(cls, index, n_in, cfg):
        return cls(index, n_in, **cfg)

