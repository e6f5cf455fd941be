"""The Keras adapter on TensorFlow or JAX: :class:`KerasAdapter` whose computations run on
the backend and are offered to the probes as torch ``autograd.Function`` s.

Each Function converts its torch inputs to the backend's arrays (copies), runs Keras's own
code there (``stateless_call`` with the taps, Keras's loss function) and returns torch
tensors; its backward pass is the backend's vector-Jacobian product of the same code. The
training objective (mean loss over a batch) is differentiable twice: its gradient is a
Function whose backward is the backend's Hessian-vector product, so the curvature probe's
``autograd.grad(..., create_graph=True)`` works as on torch.
"""

from __future__ import annotations

import keras
import numpy as np
import torch

from .._keras import KerasAdapter, leaf_layers
from .._view import as_torch


def to_torch(a) -> torch.Tensor:
    t = as_torch(a)
    if t is None:
        raise TypeError(f"expected one array of Keras's backend, got {type(a).__name__}")
    return t


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class CompiledAdapter(KerasAdapter):
    """A built Keras 3 model on the TensorFlow or JAX backend, as the step view needs it.
    ``ops``: the backend's part (``_tensorflow`` or ``_jax``). The gradient of a step is the
    one :meth:`record_gradients` computed on that step's batch before the update."""

    def __init__(self, model, ops):
        self.ops = ops
        self._grads: dict[str, torch.Tensor] | None = None
        if model.trainable_variables:
            super().__init__(model)
        else:   # not built yet (TensorFlow builds it when it first traces the step): the loss now, the layers in bind()
            self.model, self.skipped = model, []
            self.leaves = [layer for layer in leaf_layers(model) if not isinstance(layer, keras.layers.InputLayer)]
            self.token_inputs = bool(self.leaves) and isinstance(self.leaves[0], keras.layers.Embedding)
            self._describe()
            self._loss_fn()
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    def bind(self) -> None:
        """Read the layers and variables of the built model (before its first step)."""
        self._describe()
        self.variables = [v for v, _ in self.layouts.values()]
        self.dtype = getattr(torch, keras.backend.standardize_dtype(self.model.trainable_variables[0].dtype))

    # -- values across the boundary

    def value(self, v) -> torch.Tensor:
        return to_torch(v.value)

    def array(self, t: torch.Tensor):
        return keras.ops.convert_to_tensor(to_numpy(t))

    def values(self, params) -> list:
        """View-layout torch parameters (in ``layouts`` order) as backend arrays of the variables' shapes."""
        return [keras.ops.convert_to_tensor(to_numpy(p).reshape(v.shape)) for p, v in zip(params, self.variables)]

    def from_values(self, arrays, like) -> list[torch.Tensor]:
        return [to_torch(a).reshape(p.shape).to(p.dtype) for a, p in zip(arrays, like)]

    # -- the step's gradient

    def record_gradients(self, data) -> None:
        """The gradient of Keras's training loss on this batch at the current weights (before
        the update), as Keras's step computes it: the same stateless loss (regularization
        included) and the same random state (a dropout mask equal to the step's), nothing assigned."""
        model = self.model
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        by_id = {id(v): i for i, v in enumerate(model.trainable_variables)}
        trainable = [v.value for v in model.trainable_variables]
        rest = ([v.value for v in model.non_trainable_variables], [v.value for v in model.metrics_variables])

        def loss(values):
            return training_loss(model, [*values], *rest, x, y, sw)

        _, grads = self.ops.value_and_grad(loss, trainable)
        self._grads = {k: self.to_view(to_torch(grads[by_id[id(v)]]), lay) for k, (v, lay) in self.layouts.items()}

    def forget_gradients(self) -> None:
        self._grads = None

    def grads(self) -> dict[str, torch.Tensor]:
        if self._grads is None:
            raise RuntimeError("no gradient was recorded for this step")
        return self._grads

    # -- the model, its loss and the objective, differentiable in torch

    def forward(self, params, x, taps=None) -> torch.Tensor:
        return _Model.apply(self, taps, x, *[params[k] for k in self.layouts])

    def loss_per_sample(self, out, y) -> torch.Tensor:
        return _Loss.apply(self, y, out)

    def objective(self, params, x, y) -> torch.Tensor:
        """The mean per-sample loss of the batch, differentiable twice (the curvature probe)."""
        f = self._objective_fn(self.array(x), self.array(y))
        return _Objective.apply(self, f, *[params[k] for k in self.layouts])

    def _logits(self, arrays, x):
        """Logits on backend arrays, for a backend's autodiff: the taps this pass fills are not
        kept (a traced pass cannot be copied out), nor what it would have skipped."""
        skipped = list(self.skipped)
        try:
            return self._call(dict(zip(map(id, self.variables), arrays)), x)
        finally:
            self.skipped[:] = skipped

    def _objective_fn(self, xb, yb):
        def f(arrays):
            return keras.ops.mean(KerasAdapter.loss_per_sample(self, self._logits(arrays, xb), yb))
        return f


def training_loss(model, trainable, non_trainable, metrics, x, y, sample_weight):
    """Keras's training loss of a batch, stateless: what ``train_step`` differentiates
    (the compiled loss plus the model's losses), on the given variable values."""
    kwargs = {"training": True} if getattr(model, "_call_has_training_arg", True) else {}
    y_pred, _, losses = model.stateless_call(trainable, non_trainable, x, return_losses=True, **kwargs)
    if losses:   # the forward pass's own losses (activity regularization), as Keras's JAX step passes them
        model._losses_override = losses
    try:
        loss, _ = model.stateless_compute_loss(trainable, non_trainable, metrics, x=x, y=y, y_pred=y_pred,
                                               sample_weight=sample_weight, training=True)
    finally:
        if losses:
            model._losses_override = []
    return loss


class _Model(torch.autograd.Function):
    """The model's logits on the probe rows; the taps filled in the same pass."""

    @staticmethod
    def forward(ctx, a, taps, x, *params):
        xb = a.array(x)
        out = a._call(dict(zip(map(id, a.variables), a.values(params))), xb, taps)
        ctx.a, ctx.xb = a, xb
        ctx.save_for_backward(*params)
        return to_torch(out).to(a.dtype)

    @staticmethod
    def backward(ctx, g):
        a, params = ctx.a, ctx.saved_tensors
        grads = a.ops.vjp(lambda arrays: a._logits(arrays, ctx.xb), a.values(params), a.array(g))
        return (None, None, None, *a.from_values(grads, params))


class _Loss(torch.autograd.Function):
    """Keras's per-sample loss of the logits (``KerasAdapter.loss_per_sample`` on the backend)."""

    @staticmethod
    def forward(ctx, a, y, out):
        ob, yb = a.array(out), a.array(y)
        ctx.a, ctx.yb = a, yb
        ctx.save_for_backward(out)
        return to_torch(KerasAdapter.loss_per_sample(a, ob, yb)).to(out.dtype)

    @staticmethod
    def backward(ctx, g):
        a, (out,) = ctx.a, ctx.saved_tensors
        (d_out,) = a.ops.vjp(lambda o: KerasAdapter.loss_per_sample(a, o[0], ctx.yb), [a.array(out)], a.array(g))
        return None, None, to_torch(d_out).to(out.dtype)


class _Objective(torch.autograd.Function):
    """f(params), a scalar; its backward is :class:`_Gradient` (itself differentiable)."""

    @staticmethod
    def forward(ctx, a, f, *params):
        ctx.a, ctx.f = a, f
        ctx.save_for_backward(*params)
        return to_torch(f(a.values(params))).to(a.dtype)

    @staticmethod
    def backward(ctx, g):
        return (None, None, *_Gradient.apply(ctx.a, ctx.f, g, *ctx.saved_tensors))


class _Gradient(torch.autograd.Function):
    """g · ∇f(params); its backward is the backend's Hessian-vector product."""

    @staticmethod
    def forward(ctx, a, f, g, *params):
        _, grads = a.ops.value_and_grad(f, a.values(params))
        grads = a.from_values(grads, params)
        ctx.a, ctx.f, ctx.grads = a, f, grads
        ctx.save_for_backward(g, *params)
        return tuple(g * gr for gr in grads)

    @staticmethod
    def backward(ctx, *vs):
        a, (g, *params) = ctx.a, ctx.saved_tensors
        vs = [torch.zeros_like(p) if v is None else v for v, p in zip(vs, params)]
        hv = a.from_values(a.ops.hvp(ctx.f, a.values(params), a.values(vs)), params)
        d_g = sum((gr * v).sum() for gr, v in zip(ctx.grads, vs))
        return (None, None, d_g.reshape(g.shape).to(g.dtype), *[g * h for h in hv])
