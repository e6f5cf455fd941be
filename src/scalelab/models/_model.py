from __future__ import annotations

import math

import numpy as np
import torch

from ._base import Layer, Param, Pass


class Model:
    """A model as a list of layers, run over a stacked group of M models.

    One forward path serves training, evaluation and probes (``Pass`` says which). Parameters
    live in one flat dict ``name -> (M, ...)`` that the optimizer and the probes see.
    """

    def __init__(self, layers: list[Layer]):
        self.layers = list(layers)
        names = [q.name for q in self.param_list()]
        if len(set(names)) != len(names):
            raise ValueError(f"two layers share a parameter name: {names}")

    @property
    def weighted(self) -> list[Layer]:
        """The layers with a kernel and a bias, in order (per-layer multipliers index these)."""
        return [l for l in self.layers if l.weighted]

    def param_list(self) -> list[Param]:
        return [q for layer in self.layers for q in layer.params()]

    def init(self, seed: int, init: str | list[str], init_scale: float | list[float],
             bias_init: "str | float | list") -> dict[str, np.ndarray]:
        """One model's parameters (float64, per-model shapes), drawn from its own seed's init stream."""
        rng = np.random.default_rng([seed, 0])
        n = len(self.weighted)
        schemes = init if isinstance(init, list) else [init] * n
        scales = init_scale if isinstance(init_scale, list) else [init_scale] * n
        biases = bias_init if isinstance(bias_init, list) else [bias_init] * n
        params, j = {}, 0
        for layer in self.layers:
            if layer.weighted:
                params.update(layer.init(rng, schemes[j], scales[j], biases[j]))
                j += 1
            else:
                params.update(layer.init(rng, "", 1.0, biases[0]))
        return params

    def buffers(self, M: int, dtype, device) -> dict[str, torch.Tensor]:
        """Every layer's explicit state for M models, flat over models."""
        return {name: torch.full((M * math.prod(shape),), value, dtype=dtype, device=device)
                for layer in self.layers for name, (shape, value) in layer.buffers().items()}

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, p: Pass) -> torch.Tensor:
        """x of shape (M, batch, n_in) → outputs (M, batch, n_out) (logits or predictions)."""
        for layer in self.layers:
            x = layer.forward(params, x, p)
        return x


def stack_params(per_model: list[dict[str, np.ndarray]], dtype: torch.dtype, device) -> dict[str, torch.Tensor]:
    """Stack per-model parameter dicts along a new leading model axis."""
    return {k: torch.as_tensor(np.stack([p[k] for p in per_model]), dtype=dtype, device=device).contiguous()
            for k in per_model[0]}
