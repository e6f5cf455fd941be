"""Initial values, drawn in float64 numpy from each model's own RNG, so a model's numbers do
not depend on the group it trains in, on the device or on the dtype."""

from __future__ import annotations

import math

import numpy as np


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


def init_kernel(scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator, shape=None) -> np.ndarray:
    """A float64 kernel drawn by ``scheme``, of shape ``shape`` (default (fan_in, fan_out))."""
    shape = shape or (fan_in, fan_out)
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


def init_bias(scheme: "str | float", fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """A float64 bias (1, fan_out): "zeros", "torch_default" (U(±1/sqrt(fan_in))) or a
    constant (a number: every unit starts at it, e.g. -3.0)."""
    if not isinstance(scheme, str):
        return np.full((1, fan_out), float(scheme))
    if scheme == "zeros":
        return np.zeros((1, fan_out))
    if scheme == "torch_default":
        limit = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=(1, fan_out))
    raise ValueError(f"unknown bias init {scheme!r}")


def init_orthogonal(rng: np.random.Generator, shape: tuple[int, int], gain: float = 1.0) -> np.ndarray:
    """An orthogonal matrix as Keras's ``Orthogonal`` draws it: QR of a normal matrix with the
    larger side first, signs fixed by R's diagonal so the draw is uniform (Haar), transposed
    back to ``shape``. Rows (or columns, whichever are fewer) are orthonormal."""
    rows, cols = shape
    a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q
