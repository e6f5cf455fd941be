"""The reference optimizers: pure ``(init, update)`` pairs over stacked parameters, optax style.

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


def adam_step_scalars(b1, b2, keras, t):
    """Per-model factors of Adam's step t: (c, a) with direction = c·m / (a·sqrt(v) + eps).

    torch semantics: m̂ / (sqrt(v̂) + eps) = (1/bc1)·m / (sqrt(v)/sqrt(bc2) + eps).
    Keras semantics: Keras adds eps to sqrt of the *uncorrected* v and bias-corrects the
    learning rate, lr·sqrt(bc2)/bc1 · m / (sqrt(v) + eps).
    ``keras`` is 1.0 for Keras semantics and 0.0 for torch; bc_i = 1 - b_i^t.
    """
    bc1 = 1 - b1 ** t
    bc2_sqrt = (1 - b2 ** t) ** 0.5
    c = (keras * bc2_sqrt + (1 - keras)) / bc1
    a = keras + (1 - keras) / bc2_sqrt
    return c, a


def scale_by_adam(b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0) -> Transform:
    """Adam's direction c·m / (a·sqrt(v) + eps), torch or Keras eps semantics
    (see :func:`adam_step_scalars`); ``keras_eps`` = 1 selects Keras's."""

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
            # a float power: an int tensor exponent would give float32
            c, a = adam_step_scalars(b1k, b2k, _hp(keras_eps, k), t.to(g.dtype))
            out[k] = c * mu[k] / (a * nu[k].sqrt() + _hp(eps, k))
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
