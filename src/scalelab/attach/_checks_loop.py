"""Checks on how the training loop uses the model, from plain counts the adapters measure:
weights that cannot change (frozen, or not held by the optimizer), gradients never reset
(no ``zero_grad``), a target shape the loss broadcasts. Each one is a certainty, not a
threshold: it holds on every step of the run, so each is a ``cause``."""

from __future__ import annotations

from .._explain._findings import CAUSE
from . import _fixes as fix
from ._checks import _f
from ._model import ModelDesc


def check_frozen(d: ModelDesc, n_trainable: int) -> list:
    if n_trainable:
        return []
    return [_f("frozen-model", CAUSE, "the model has no trainable weights (every layer frozen): training cannot change "
               "it", fix.frozen(d), fired="n_trainable", n_trainable=0)]


def check_optimizer_params(d: ModelDesc, n_model: int, n_held: int, n_other: int) -> list:
    """``n_model`` trainable model parameters, ``n_held`` of them in the optimizer, ``n_other``
    optimizer parameters that are not the model's (another instance's)."""
    if n_model == 0:
        return check_frozen(d, 0)
    if n_held == n_model:
        return []
    missing = n_model - n_held
    text = (f"the optimizer holds {n_held} of the model's {n_model} trainable parameter tensors" +
            (f" (and {n_other} tensors of something else: another model instance?)" if n_other else "") +
            f": {missing} never change")
    return [_f("optimizer-params", CAUSE, text, fix.optimizer_params(d), fired="missing", missing=missing,
               n_model=n_model, n_held=n_held, n_other=n_other)]


def check_zero_grad(d: ModelDesc, accumulated: int, steps: int) -> list:
    """``accumulated``: optimizer steps whose first backward found last step's gradient still there."""
    if steps < 2 or accumulated < max(1, (steps - 1) // 2):
        return []
    return [_f("missing-zero-grad", CAUSE, f"in {accumulated} of {steps - 1} steps the gradient of the previous step "
               "was still there when backward added the new one: every step applies the sum of all past gradients",
               fix.zero_grad(d), fired="accumulated", accumulated=accumulated, steps=steps)]


def check_target_shape(d: ModelDesc, out_shape: tuple, y_shape: tuple) -> list:
    out_shape, y_shape = tuple(out_shape), tuple(y_shape)
    if d.loss not in ("mse", "mae", "huber") or out_shape == y_shape or len(out_shape) == 0 or len(y_shape) == 0:
        return []
    try:
        import numpy as np

        b = np.broadcast_shapes(out_shape, y_shape)
    except ValueError:
        return []
    if b in (out_shape, y_shape) and np.prod(b) == max(np.prod(out_shape), np.prod(y_shape)) and \
            np.prod(out_shape) == np.prod(y_shape):
        return []
    return [_f("target-shape-broadcast", CAUSE, f"the output has shape {list(out_shape)} and the target "
               f"{list(y_shape)}: the loss broadcasts them to {list(b)} and compares every prediction with every "
               "target, so the model learns the mean", fix.target_shape(d), fired="broadcast_shape",
               broadcast_shape=list(b), out_shape=list(out_shape), target_shape=list(y_shape))]


def check_unregistered(d: ModelDesc) -> list:
    """Layers with weights that ran in the model's forward but are not its submodules (kept in
    a plain list or dict): ``model.parameters()`` misses them, so the optimizer never updates them."""
    if not d.unregistered:
        return []
    names = ", ".join(sorted(set(d.unregistered)))
    return [_f("unregistered-params", CAUSE, f"{len(d.unregistered)} layers with weights ({names}) run in forward but "
               "are not registered on the model (a plain Python list or dict): model.parameters() misses them, so "
               "the optimizer never changes them", "keep them in nn.ModuleList([...]) (or nn.ModuleDict) instead of a "
               "list", fired="n_unregistered", n_unregistered=len(d.unregistered), layers=sorted(set(d.unregistered)))]
