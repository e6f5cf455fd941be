"""Optimizers as pure ``(init, update)`` pairs over stacked parameters, optax style.

Parameters, gradients and updates are dicts ``name -> tensor`` whose leading axis is
the model axis. Hyperparameters are per parameter: a float, or a tensor that broadcasts
against the parameter (shape (M, 1, 1) for a per-model, per-layer value). Named
optimizers are chains of small transforms; ``update`` returns new updates and a new
state and never mutates its inputs.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

Params = dict[str, torch.Tensor]
HP = dict[str, "torch.Tensor | float"] | float


def _hp(h: HP, name: str):
    return h[name] if isinstance(h, dict) else h


class Transform(NamedTuple):
    init: Callable[[Params], tuple]
    update: Callable[[Params, tuple, Params], tuple[Params, tuple]]


class EmptyState(NamedTuple):
    pass


class AdamState(NamedTuple):
    count: torch.Tensor   # steps taken, a scalar int64 tensor
    mu: Params            # first moment
    nu: Params            # second moment (uncorrected)


class TraceState(NamedTuple):
    trace: Params


def scale_by_adam(b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0) -> Transform:
    """Adam's direction m̂ / (sqrt(v̂) + eps').

    torch semantics (``keras_eps`` = 0): eps' = eps, added to sqrt of the *corrected* v̂.
    Keras semantics (``keras_eps`` = 1): Keras adds eps to sqrt of the *uncorrected* v and
    bias-corrects the learning rate instead, lr·sqrt(1-b2^t)/(1-b1^t) · m/(sqrt(v)+eps),
    which equals this direction with eps' = eps / sqrt(1 - b2^t).
    """

    def init(params):
        zeros = {k: torch.zeros_like(p) for k, p in params.items()}
        return AdamState(torch.zeros((), dtype=torch.int64), zeros, {k: torch.zeros_like(p) for k, p in params.items()})

    def update(grads, state, params=None):
        t = state.count + 1
        mu, nu, out = {}, {}, {}
        for k, g in grads.items():
            b1k, b2k = _hp(b1, k), _hp(b2, k)
            mu[k] = state.mu[k] * b1k + g * (1 - b1k)
            nu[k] = state.nu[k] * b2k + g * g * (1 - b2k)
            tf = t.to(g.dtype)  # a float64 power: an int tensor exponent would give float32
            bc1 = 1 - b1k ** tf
            bc2_sqrt = (1 - b2k ** tf) ** 0.5
            kk = _hp(keras_eps, k)
            eps_eff = _hp(eps, k) * (kk / bc2_sqrt + (1 - kk))
            out[k] = (mu[k] / bc1) / (nu[k].sqrt() / bc2_sqrt + eps_eff)
        return out, AdamState(t, mu, nu)

    return Transform(init, update)


def trace(momentum: HP = 0.9, nesterov: bool = False) -> Transform:
    """Heavy-ball momentum, torch semantics: buf = momentum·buf + g (nesterov: g + momentum·buf)."""

    def init(params):
        return TraceState({k: torch.zeros_like(p) for k, p in params.items()})

    def update(grads, state, params=None):
        new, out = {}, {}
        for k, g in grads.items():
            m = _hp(momentum, k)
            new[k] = state.trace[k] * m + g
            out[k] = g + m * new[k] if nesterov else new[k]
        return out, TraceState(new)

    return Transform(init, update)


def add_decayed_weights(weight_decay: HP = 0.0) -> Transform:
    """Add weight_decay·W to the update: after scale_by_lr, the decay step is lr·wd·W (decoupled)."""

    def init(params):
        return EmptyState()

    def update(updates, state, params):
        return {k: u + _hp(weight_decay, k) * params[k] for k, u in updates.items()}, state

    return Transform(init, update)


def scale_by_lr(lr: HP) -> Transform:
    """Multiply by -lr: the update to add to the parameters."""

    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        return {k: u * (-_hp(lr, k)) for k, u in updates.items()}, state

    return Transform(init, update)


def chain(*transforms: Transform) -> Transform:
    """Apply transforms in order; the state is the tuple of their states."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return Transform(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    return {k: p + updates[k] for k, p in params.items()}


# ----------------------------------------------------------------------------- named optimizers

def sgd(lr: HP) -> Transform:
    return chain(scale_by_lr(lr))


def momentum(lr: HP, momentum: HP = 0.9, nesterov: bool = False) -> Transform:
    return chain(trace(momentum, nesterov), scale_by_lr(lr))


def adam(lr: HP, b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0) -> Transform:
    return chain(scale_by_adam(b1, b2, eps, keras_eps), scale_by_lr(lr))


def adamw(lr: HP, b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0,
          weight_decay: HP = 0.0) -> Transform:
    return chain(scale_by_adam(b1, b2, eps, keras_eps), add_decayed_weights(weight_decay), scale_by_lr(lr))


def _family(name: str) -> str:
    return "adam" if name in ("adam", "adamw") else "sgd"


def build_optimizer(optims: list[dict], param_layers: dict[str, tuple[int, bool]], dtype, device) -> Transform:
    """The optimizer of a stacked group from each model's resolved ``optim`` section.

    ``param_layers`` maps a parameter name to (layer index, is_kernel). Per-layer
    multipliers become per-parameter tensors of shape (M, 1, 1), so one update serves
    every model with its own hyperparameters.
    """
    family = {_family(o["name"]) for o in optims}
    if len(family) != 1:
        raise ValueError("a stacked group needs one optimizer family (sgd/momentum or adam/adamw)")
    nesterov = {bool(o["nesterov"]) for o in optims}
    if len(nesterov) != 1:
        raise ValueError("a stacked group needs one nesterov setting")

    def per_param(fn) -> dict[str, torch.Tensor]:
        out = {}
        for name, (layer, is_kernel) in param_layers.items():
            vals = [fn(o, layer, is_kernel) for o in optims]
            out[name] = torch.tensor(vals, dtype=dtype, device=device).view(-1, 1, 1)
        return out

    lr = per_param(lambda o, l, k: o["lr"] * o["lr_mult"][l])
    wd = per_param(lambda o, l, k: o["weight_decay"] * o["wd_mult"][l])
    has_wd = any(o["weight_decay"] > 0 for o in optims)
    if family == {"adam"}:
        b1 = per_param(lambda o, l, k: o["beta1"])
        b2 = per_param(lambda o, l, k: o["beta2"])
        eps = per_param(lambda o, l, k: o["eps"] * o["eps_mult"][l])
        keras = per_param(lambda o, l, k: 1.0 if o["eps_mode"] == "keras" else 0.0)
        parts = [scale_by_adam(b1, b2, eps, keras)]
    else:
        mom = per_param(lambda o, l, k: o["momentum"] if o["name"] == "momentum" else 0.0)
        has_mom = any(o["name"] == "momentum" for o in optims)
        parts = [trace(mom, nesterov.pop())] if has_mom else []
    if has_wd:
        parts.append(add_decayed_weights(wd))
    parts.append(scale_by_lr(lr))
    return chain(*parts)


def l2_penalty(params: Params, l2: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-model penalty sum_layers l2_layer · ||W_layer||² over kernels: shape (M,)."""
    total = None
    for name, coef in l2.items():
        term = coef.view(-1) * params[name].pow(2).sum(dim=(1, 2))
        total = term if total is None else total + term
    return total
