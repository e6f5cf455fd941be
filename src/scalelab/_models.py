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


@dataclass(frozen=True)
class Conv:
    """A same-padded k×k convolution; its kernel is stored as (M, c_in·k·k, c_out), the
    layout of a dense kernel, so optimizers and per-model hyperparameters see 3-D tensors."""

    index: int
    c_in: int
    c_out: int
    k: int = 3

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


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalization over ``channels`` (features of a dense layer, or conv channels):
    per-model batch statistics in training, per-model running averages in evaluation."""

    index: int
    channels: int

    @property
    def gamma(self) -> str:
        return f"bn{self.index}.gamma"

    @property
    def beta(self) -> str:
        return f"bn{self.index}.beta"


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


# d activation / d pre-activation from the activation's output (and input): what autograd uses
_ACT_GRAD = {
    "relu": lambda z, h: (h > 0).to(h.dtype),
    "tanh": lambda z, h: 1 - h * h,
    "sigmoid": lambda z, h: h * (1 - h),
    "linear": None,
}


def mlp_forward_backward(params: dict[str, torch.Tensor], layers: list[Dense], x: torch.Tensor, activation: str,
                         loss_grad) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Forward and backward of a stacked MLP by hand, without building an autograd graph.

    ``loss_grad(out) -> (per_sample (M, b), d_out (M, b, n_out))`` gives the per-sample loss
    and the gradient of the batch-mean loss w.r.t. the outputs. Returns (per_sample, out,
    grads). The arithmetic is the chain rule autograd applies (the same matmuls, the same
    activation derivatives), minus the graph bookkeeping and a few temporaries; tests check
    it against autograd in float64.
    """
    act = ACTIVATIONS[activation]
    d_act = _ACT_GRAD[activation]
    inputs, pre, post = [x], [], []
    h = x
    last = len(layers) - 1
    for layer in layers:
        z = torch.baddbmm(params[layer.bias], h, params[layer.weight])
        if layer.index == last:
            out = z
            break
        h = act(z)
        pre.append(z)
        post.append(h)
        inputs.append(h)
    per, d = loss_grad(out)
    grads = {}
    for layer in reversed(layers):
        i = layer.index
        W = params[layer.weight]
        if W.stride(1) == 1:  # stored transposed (M, out, in) in memory: write the gradient the same way
            grads[layer.weight] = torch.bmm(d.transpose(1, 2), inputs[i]).transpose(1, 2)
        else:
            grads[layer.weight] = torch.bmm(inputs[i].transpose(1, 2), d)
        grads[layer.bias] = d.sum(1, keepdim=True)
        if i > 0:
            d = torch.bmm(d, params[layer.weight].transpose(1, 2))
            if d_act is not None:
                d = d * d_act(pre[i - 1], post[i - 1])
    return per, out, grads


def net_layers(n_in: int, hidden: list[int], n_out: int, batchnorm: bool = False, conv: list[int] | None = None,
               kernel: int = 3, image_shape: tuple | None = None) -> list:
    """The layers of a model: an MLP (``conv`` None) or a fully convolutional net of
    conv(–BN)–activation blocks with ``conv`` channels and a plain conv head whose channels
    make n_out outputs per pixel. With ``batchnorm``, each hidden block normalizes its
    pre-activations (before the activation)."""
    layers: list = []
    if conv is None:
        sizes = [n_in, *hidden, n_out]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Dense(i, a, b))
            if batchnorm and i < len(sizes) - 2:
                layers.append(BatchNorm(i, b))
        return layers
    c, h, w = image_shape
    if n_out % (h * w):
        raise ValueError(f"a fully convolutional model predicts per pixel: {n_out} targets are not a multiple of "
                         f"{h}×{w} pixels")
    chans = [c, *conv, n_out // (h * w)]
    for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
        layers.append(Conv(i, a, b, kernel))
        if batchnorm and i < len(chans) - 2:
            layers.append(BatchNorm(i, b))
    return layers


def weighted(layers: list) -> list:
    """The layers with a kernel and a bias (dense and conv), in order."""
    return [l for l in layers if not isinstance(l, BatchNorm)]


def init_net(layers: list, init: str | list[str], init_scale: float | list[float], bias_init: str,
             seed: int) -> dict[str, np.ndarray]:
    """One model's parameters (float64, 3-D: a leading axis is added by stacking), drawn from
    its own seed's init stream; BN scales start at 1 and shifts at 0."""
    rng = np.random.default_rng([seed, 0])
    wl = weighted(layers)
    schemes = init if isinstance(init, list) else [init] * len(wl)
    scales = init_scale if isinstance(init_scale, list) else [init_scale] * len(wl)
    params = {}
    for layer in layers:
        if isinstance(layer, BatchNorm):
            params[layer.gamma] = np.ones((1, layer.channels))
            params[layer.beta] = np.zeros((1, layer.channels))
            continue
        j = wl.index(layer)
        shape = (layer.fan_in, layer.c_out if isinstance(layer, Conv) else layer.fan_out)
        params[layer.weight] = init_kernel(schemes[j], layer.fan_in, layer.fan_out, rng, shape) * scales[j]
        params[layer.bias] = init_bias(bias_init, layer.fan_in, shape[1], rng)
    return params


def net_forward(params, buffers, layers, x, activation: str, training: bool, bn_momentum: float, bn_eps: float,
                image_shape=None) -> torch.Tensor:
    """x of shape (M, batch, n_in) → outputs (M, batch, n_out), for any :func:`net_layers`.

    Convolutions of all models run as one grouped convolution: model m's samples sit in
    channel block m of a (batch, M·C, H, W) tensor (every model sees its own batch rows),
    and BatchNorm over those channels keeps per-model statistics. ``buffers`` holds each BN
    layer's running mean and variance, shape (M·C,), updated in place when ``training``.
    """
    import torch.nn.functional as F

    act = ACTIVATIONS[activation]
    M, b = x.shape[0], x.shape[1]
    conv = isinstance(layers[0], Conv)
    if conv:
        c, hh, ww = image_shape
        h = x.reshape(M, b, c, hh, ww).transpose(0, 1).reshape(b, M * c, hh, ww)
    else:
        h = x
    last = weighted(layers)[-1]
    for layer in layers:
        if isinstance(layer, BatchNorm):
            shape = h.shape
            flat = h if conv else h.transpose(0, 1).reshape(b, M * layer.channels)
            flat = F.batch_norm(flat, buffers[layer.gamma + ".mean"], buffers[layer.gamma + ".var"],
                                params[layer.gamma].reshape(-1), params[layer.beta].reshape(-1), training,
                                1.0 - bn_momentum, bn_eps)
            h = flat if conv else flat.reshape(b, M, layer.channels).transpose(0, 1)
            assert h.shape == shape
            h = act(h)
            continue
        if isinstance(layer, Conv):
            w = params[layer.weight].transpose(1, 2).reshape(M * layer.c_out, layer.c_in, layer.k, layer.k)
            h = F.conv2d(h, w, params[layer.bias].reshape(-1), padding=layer.k // 2, groups=M)
        else:
            h = torch.baddbmm(params[layer.bias], h, params[layer.weight])
        if layer is last:
            break
        if not any(isinstance(l, BatchNorm) and l.index == layer.index for l in layers):
            h = act(h)
    if conv:
        h = h.reshape(b, M, -1).transpose(0, 1)
    return h


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
