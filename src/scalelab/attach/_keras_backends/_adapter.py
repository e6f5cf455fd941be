"""The Keras adapter on TensorFlow or JAX: :class:`KerasAdapter` whose computations run on
the backend and are offered to the probes as torch ``autograd.Function`` s.

Each computation is a pure function of the backend's arrays (the weights, the other
variables' values, the batch), compiled once per model structure and shape where the backend
compiles (``jax.jit``, see ``_compiled``; ``tf.function`` on TensorFlow): Keras's own ``stateless_call`` with the taps,
Keras's loss function, and their derivatives by the backend's autodiff. A Function converts
its torch inputs to arrays (copies), calls it and returns torch tensors; its backward pass
is the backend's vector-Jacobian product. The training objective (mean loss over a batch)
is differentiable twice: its gradient is a Function whose backward is the backend's
Hessian-vector product, so the curvature probe's ``autograd.grad(..., create_graph=True)``
works as on torch.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import torch

from .._keras_adapter import SIGMOID, KerasAdapter, leaf_layers
from ._compiled import (Structure, activation_loss, compiled, forward, forward_and_loss, logits_vjp, loss_and_grad,
                        objective_grad, objective_hvp, signature, training_grad)

_clips: dict = {}   # what a loss does at a saturated output, per loss and backend: asked once per process


def to_torch(a) -> torch.Tensor:
    """A concrete array of Keras's backend as a torch tensor of its own (a copy: JAX reuses
    the buffers it donates to the next step)."""
    return torch.from_numpy(np.array(a))   # one copy (keras.ops.convert_to_numpy would add a second)


def to_array(t: torch.Tensor):
    from . import ops

    return ops().array(t.detach().cpu().numpy())


class CompiledAdapter(KerasAdapter):
    """A built Keras 3 model on the TensorFlow or JAX backend, as the step view needs it.
    ``ops``: the backend's part (``_tensorflow`` or ``_jax``). The gradient of a step is the
    one :meth:`record_gradients` computed on that step's batch before the update."""

    def __init__(self, model, ops, skipped: list | None = None):
        self.ops = ops
        self._grads: dict[str, torch.Tensor] | None = None
        self._fused = None   # the last forward pass's (logits, targets, per-sample losses, their gradient)
        self._batches: dict = {}   # batch_array's
        self._values: dict = {}    # params': tensor storage -> (the tensor, the array it was read from)
        self._structure = None
        self.sigmoid_logits = False   # set below: the backend's binary cross-entropy reads a sigmoid's logits
        if model.trainable_variables:
            super().__init__(model, skipped)
            self.bind()
        else:   # not built yet (TensorFlow builds it when it first traces the step): the loss now, the layers in bind()
            self.model, self.skipped = model, skipped if skipped is not None else []
            self.leaves = [layer for layer in leaf_layers(model) if not isinstance(layer, keras.layers.InputLayer)]
            self.token_inputs = bool(self.leaves) and isinstance(self.leaves[0], keras.layers.Embedding)
            self._describe()
            self._loss_fn()
        self.device = torch.device("cpu")
        if self.clip and self.softmax_layer is not None and not self._loss_clips():
            # what the loss is, in the spec's terms: a cross-entropy of the logits, not clipped
            self.clip, self.from_logits = 0.0, True
        if (self._sigmoid_out is not None and self.loss_name == "binary_crossentropy" and not self.from_logits
                and not self._loss_clips(sigmoid=True)):
            self.sigmoid_logits = True   # the view reads the sigmoid's logits, the loss takes them as Keras's does

    @property
    def sigmoid_layer(self):
        return self._sigmoid_out if self.sigmoid_logits else None

    def _loss_clips(self, sigmoid: bool = False) -> bool:
        """Whether Keras's probability cross-entropy clips a softmax (binary: a sigmoid) output on
        this backend. On TensorFlow it does not: Keras computes it from the activation's own logits
        (a saturated output keeps a finite loss and a nonzero gradient), so there is no clip to report."""
        eps = float(keras.config.epsilon())
        key = (self.fn, tuple(sorted(self.fn_kwargs.items())), sigmoid)
        if (self.ops.__name__, key, self.onehot, eps) not in _clips:
            if sigmoid:   # the true class 1 at logit -60
                logits, target = np.array([[-60.0]], dtype="float32"), np.array([[1.0]], dtype="float32")
            else:         # the true class 0 at logit 60 below the other
                logits = np.array([[0.0, 60.0]], dtype="float32")
                target = np.array([[1.0, 0.0]] if self.onehot else [0], dtype="float32" if self.onehot else "int32")
            per = compiled(self.ops, activation_loss)(key, *map(self.ops.array, (logits, target)))
            # halfway: clipped gives -log(eps) (16.1 at 1e-7), from the logits 60
            _clips[self.ops.__name__, key, self.onehot, eps] = float(
                keras.ops.convert_to_numpy(per).reshape(-1)[0]) < (60.0 - math.log(eps)) / 2
        return _clips[self.ops.__name__, key, self.onehot, eps]

    def _describe(self) -> None:
        super()._describe()
        out = self.leaves[-1] if self.leaves else None
        act = getattr(out, "activation", None)
        if self.softmax_layer is None and act in self.ops.SOFTMAX:
            # the backend's own softmax as the output activation (tf.nn.softmax): read as Keras's
            # (TensorFlow's compiled loss takes its logits as it takes those of Keras's softmax)
            self.softmax_layer = out
        # a sigmoid output (Keras's or the backend's, fused or a layer of its own): the view reads its logits
        # where the backend's binary cross-entropy does (decided in __init__, by asking the loss)
        self._sigmoid_out = out if act is SIGMOID or act in self.ops.SIGMOID else None

    def bind(self) -> None:
        """Read the layers and variables of the built model (its computations compile when first run)."""
        self._describe()
        self.variables = [v for v, _ in self.layouts.values()]
        self.dtype = getattr(torch, keras.backend.standardize_dtype(self.model.trainable_variables[0].dtype))
        self._structure = None   # read when first run: the model as built and the loss as this adapter reads them

    def run(self, fn, *args):
        """One of ``_compiled``'s computations on this model: compiled once per structure and shape."""
        if self._structure is None:
            self._structure = Structure(self, signature(self))
        return compiled(self.ops, fn)(self._structure, *args)

    def model_output(self, out):
        """The model's output from the logits the view reads. In the loss (a backend array) by Keras's own
        activation, whose logits TensorFlow's cross-entropy reads; for the trained model's predictions (a
        torch tensor) by torch's (JAX would compile each of its ops on first use)."""
        if not isinstance(out, torch.Tensor):
            return super().model_output(out)
        if self.softmax_layer is not None:
            return torch.softmax(out, -1)
        return torch.sigmoid(out) if self.sigmoid_layer is not None else out

    # -- values across the boundary

    def value(self, v) -> torch.Tensor:
        return to_torch(self.ops.host(v.value))

    def params(self) -> dict[str, torch.Tensor]:
        # the latest parameters only (the view holds them anyway), each with the array it was read from,
        # for arrays(); forgotten at the end of a probed step (forget_gradients)
        self._values.clear()
        out = {}
        for k, (v, lay) in self.layouts.items():
            a = self.ops.host(v.value)
            t = to_torch(a)
            self._values[t.untyped_storage().data_ptr()] = (t, a)
            out[k] = self.to_view(t, lay)
        return out

    def batch_array(self, t: torch.Tensor):
        """A batch (the probe rows: the same tensor's storage at every probed step) as the backend's array,
        converted once: keyed by its storage and version (a tensor held here keeps its storage from reuse)."""
        key = (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t._version)
        hit = self._batches.get(key)
        if hit is None:
            if len(self._batches) >= 4:
                self._batches.clear()
            hit = self._batches[key] = (t, to_array(t))
        return hit[1]

    def arrays(self, params) -> list:
        """View-layout torch parameters (in ``layouts`` order) as arrays of the variables' shapes: the array
        a parameter was read from where it is that read's tensor, unchanged (the view's parameters: no copy
        back), else converted."""
        out = [self._read_from(p, v) for p, v in zip(params, self.variables)]
        return [self.ops.array(p.detach().cpu().numpy().reshape(v.shape)) if a is None else a
                for a, p, v in zip(out, params, self.variables)]

    def _read_from(self, p: torch.Tensor, v):
        hit = self._values.get(p.untyped_storage().data_ptr())
        if hit is None or hit[0]._version != p._version or p.storage_offset() or p.numel() != hit[0].numel():
            return None
        a = hit[1]
        # a JAX array the step has since taken (donated) is gone: converted instead
        return None if getattr(a, "is_deleted", lambda: False)() or tuple(a.shape) != tuple(v.shape) else a

    def tensors(self, arrays, like) -> list[torch.Tensor]:
        return [to_torch(a).reshape(p.shape).to(p.dtype) for a, p in zip(arrays, like)]

    def non_trainable(self) -> list:
        return [v.value for v in self.model.non_trainable_variables]

    # -- the computations, pure functions of arrays

    def _logits_and_taps(self, arrays, non_trainable, x):
        taps: dict = {}
        # every variable the call reads is one of the arguments (under jit nothing is read from outside)
        mapping = [*zip(self.variables, arrays), *zip(self.model.non_trainable_variables, non_trainable)]
        with keras.StatelessScope(state_mapping=mapping):
            out = self._call(dict(zip(map(id, self.variables), arrays)), x, taps)
        return out, taps

    def _loss_arrays(self, out, y):
        return KerasAdapter.loss_per_sample(self, out, y)

    def _objective(self, arrays, non_trainable, x, y):
        return keras.ops.mean(self._loss_arrays(self._logits_and_taps(arrays, non_trainable, x)[0], y))

    # -- the step's gradient

    def record_gradients(self, data) -> None:
        """The gradient of Keras's training loss on this batch at the current weights (before
        the update), as Keras's step computes it: the same stateless loss (regularization
        included) and the same random state (a dropout mask equal to the step's), nothing assigned."""
        model = self.model
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        _, grads = self.run(training_grad, [v.value for v in model.trainable_variables], self.non_trainable(),
                            [v.value for v in model.metrics_variables], x, y, sw)
        by_id = {id(v): g for v, g in zip(model.trainable_variables, grads)}
        self._grads = {k: self.to_view(to_torch(by_id[id(v)]), lay) for k, (v, lay) in self.layouts.items()}

    def forget_gradients(self) -> None:
        self._grads = None
        self._values.clear()

    def kernel_grad(self, name: str) -> torch.Tensor | None:
        return None if self._grads is None else self._grads.get(name)

    def grads(self) -> dict[str, torch.Tensor]:
        if self._grads is None:
            raise RuntimeError("no gradient was recorded for this step")
        return self._grads

    # -- the model, its loss and the objective, differentiable in torch

    def forward(self, params, x, taps=None) -> torch.Tensor:
        return _Model.apply(self, taps, x, None, *[params[k] for k in self.layouts])

    def per_sample(self, params, x, y, taps=None):
        """The per-sample losses and the logits, from one backend call (``forward_and_loss``); the losses'
        gradient is kept for :class:`_Loss` on those very logits (the zero-gradient probe asks for it)."""
        out = _Model.apply(self, taps, x, y, *[params[k] for k in self.layouts])
        return self.loss_per_sample(out, y), out

    def loss_per_sample(self, out, y) -> torch.Tensor:
        return _Loss.apply(self, y, out)

    def objective(self, params, x, y) -> torch.Tensor:
        """The mean per-sample loss of the batch, differentiable twice (the curvature probe)."""
        return _Objective.apply(self, (self.non_trainable(), self.batch_array(x), self.batch_array(y)),
                                *[params[k] for k in self.layouts])


class _Model(torch.autograd.Function):
    """The model's logits on the probe rows; the taps filled in the same pass."""

    @staticmethod
    def forward(ctx, a, taps, x, y, *params):
        ctx.a, ctx.args = a, (a.non_trainable(), a.batch_array(x))
        if y is not None and a.ops.FUSED_LOSS:
            out, raw, per, grad = a.run(forward_and_loss, a.arrays(params), *ctx.args, a.batch_array(y))
        else:
            out, raw = a.run(forward, a.arrays(params), *ctx.args)
            if y is not None:
                per, grad = a.run(loss_and_grad, out, a.batch_array(y))
        if taps is not None:
            taps.update({k: to_torch(t) for k, t in raw.items()})
        ctx.save_for_backward(*params)
        out = to_torch(out).to(a.dtype)
        if y is not None:
            a._fused = (out, y, to_torch(per).to(out.dtype), to_torch(grad).to(out.dtype))
        return out

    @staticmethod
    def backward(ctx, g):
        a, params = ctx.a, ctx.saved_tensors
        grads = a.run(logits_vjp, a.arrays(params), *ctx.args, to_array(g))
        return (None, None, None, None, *a.tensors(grads, params))


class _Loss(torch.autograd.Function):
    """Keras's per-sample loss of the logits (``KerasAdapter.loss_per_sample`` on the backend)."""

    @staticmethod
    def forward(ctx, a, y, out):
        hit = a._fused
        if hit is not None and hit[0].shape == out.shape and torch.equal(hit[0], out) and torch.equal(hit[1], y):
            ctx.grad = hit[3]
            return hit[2].clone()
        per, grad = a.run(loss_and_grad, to_array(out), to_array(y))
        ctx.grad = to_torch(grad).to(out.dtype)
        return to_torch(per).to(out.dtype)

    @staticmethod
    def backward(ctx, g):
        return None, None, g.reshape(-1, *[1] * (ctx.grad.dim() - 1)) * ctx.grad


class _Objective(torch.autograd.Function):
    """The batch's mean loss of the parameters; its backward is :class:`_Gradient` (itself differentiable)."""

    @staticmethod
    def forward(ctx, a, args, *params):
        ctx.a, ctx.args = a, args
        ctx.save_for_backward(*params)
        value, _ = a.run(objective_grad, a.arrays(params), *args)
        return to_torch(value).to(a.dtype)

    @staticmethod
    def backward(ctx, g):
        return (None, None, *_Gradient.apply(ctx.a, ctx.args, g, *ctx.saved_tensors))


class _Gradient(torch.autograd.Function):
    """g · ∇(mean loss); its backward is the backend's Hessian-vector product."""

    @staticmethod
    def forward(ctx, a, args, g, *params):
        _, grads = a.run(objective_grad, a.arrays(params), *args)
        grads = a.tensors(grads, params)
        ctx.a, ctx.args, ctx.grads = a, args, grads
        ctx.save_for_backward(g, *params)
        return tuple(g * gr for gr in grads)

    @staticmethod
    def backward(ctx, *vs):
        a, (g, *params) = ctx.a, ctx.saved_tensors
        vs = [torch.zeros_like(p) if v is None else v for v, p in zip(vs, params)]
        hv = a.tensors(a.run(objective_hvp, a.arrays(params), a.arrays(vs), *ctx.args), params)
        d_g = sum((gr * v).sum() for gr, v in zip(ctx.grads, vs))
        return (None, None, d_g.reshape(g.shape).to(g.dtype), *[g * h for h in hv])
