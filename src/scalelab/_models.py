"""Stacked MLPs: every parameter carries a leading model axis M.

A layer's kernel has shape (M, fan_in, fan_out) and its bias (M, 1, fan_out), so a
whole group of same-shaped models runs as one batched matmul (``baddbmm``). Each model
is initialised on its own from its own seed, in float64 numpy, so its numbers do not
depend on which group it trains in, on the device or on the dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Dense:
    """One dense layer; ``index`` is its position (0 = first layer)."""

    index: int
    fan_in: int
    fan_out: int

    @property
    def weight(self) -> str:
        return f"dense{self.index}.W"

    @property
    def bias(self) -> str:
        return f"dense{self.index}.b"


def mlp_layers(n_in: int, hidden: list[int], n_out: int) -> list[Dense]:
    sizes = [n_in, *hidden, n_out]
    return [Dense(i, a, b) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]


def _truncated_normal(rng: np.random.Generator, std: float, shape) -> np.ndarray:
    """Normal truncated at two standard deviations (Keras's TruncatedNormal), by rejection."""
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


# Keras's variance-scaling initialisers divide the truncated-normal std by this, so the
# truncated distribution keeps the intended variance.
_TRUNC_STD = 0.87962566103423978


def init_kernel(scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """A (fan_in, fan_out) float64 kernel drawn by ``scheme``."""
    shape = (fan_in, fan_out)
    if scheme == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    if scheme == "glorot_normal":
        return _truncated_normal(rng, math.sqrt(2.0 / (fan_in + fan_out)) / _TRUNC_STD, shape)
    if scheme == "normal_glorot":  # plain normal with Glorot's std (the seed-001 custom initializer)
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)
    if scheme == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)
    if scheme == "he_normal":
        return _truncated_normal(rng, math.sqrt(2.0 / fan_in) / _TRUNC_STD, shape)
    if scheme == "lecun_uniform":
        limit = math.sqrt(3.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)
    if scheme == "lecun_normal":
        return _truncated_normal(rng, math.sqrt(1.0 / fan_in) / _TRUNC_STD, shape)
    if scheme == "torch_default":  # nn.Linear: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in))
        limit = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=shape)
    raise ValueError(f"unknown init scheme {scheme!r}")


def init_bias(scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    if scheme == "zeros":
        return np.zeros((1, fan_out))
    if scheme == "torch_default":
        limit = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=(1, fan_out))
    raise ValueError(f"unknown bias init {scheme!r}")


def init_mlp(layers: list[Dense], init: str | list[str], init_scale: float | list[float],
             bias_init: str, seed: int) -> dict[str, np.ndarray]:
    """One model's parameters (float64), drawn from its own seed's init stream."""
    rng = np.random.default_rng([seed, 0])
    schemes = init if isinstance(init, list) else [init] * len(layers)
    scales = init_scale if isinstance(init_scale, list) else [init_scale] * len(layers)
    params = {}
    for layer, scheme, scale in zip(layers, schemes, scales):
        params[layer.weight] = init_kernel(scheme, layer.fan_in, layer.fan_out, rng) * scale
        params[layer.bias] = init_bias(bias_init, layer.fan_in, layer.fan_out, rng)
    return params


def stack_params(per_model: list[dict[str, np.ndarray]], dtype: torch.dtype, device) -> dict[str, torch.Tensor]:
    """Stack per-model parameter dicts along a new leading model axis."""
    return {k: torch.as_tensor(np.stack([p[k] for p in per_model]), dtype=dtype, device=device).contiguous()
            for k in per_model[0]}


ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def mlp_forward(params: dict[str, torch.Tensor], layers: list[Dense], x: torch.Tensor, activation: str,
                taps: dict | None = None) -> torch.Tensor:
    """x of shape (M, batch, fan_in) → outputs of shape (M, batch, n_out) (logits or predictions).

    ``taps``, when given, receives each layer's pre-activation ``pre{i}`` and activation ``act{i}``
    (for probes); it never changes the computation.
    """
    act = ACTIVATIONS[activation]
    h = x
    last = len(layers) - 1
    for layer in layers:
        z = torch.baddbmm(params[layer.bias], h, params[layer.weight])
        if taps is not None:
            taps[f"pre{layer.index}"] = z
        if layer.index == last:
            return z
        h = act(z)
        if taps is not None:
            taps[f"act{layer.index}"] = h
    return h
