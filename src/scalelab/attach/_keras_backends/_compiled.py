"""The adapter's computations on the backend, compiled once per model structure and input shape.

JAX compiles each computation with XLA when it first sees its input shapes: about 0.1–0.5 s
each on a CPU, so compiling them anew for every ``fit`` cost more than the probes themselves
(a fresh set per run: +110% on a one-epoch seed-000 fit). Here each computation is one
module-level function, compiled once per process (TensorFlow: traced once, ``tf.function``), whose first
argument is a :class:`Structure`: a static argument equal for two models exactly when the
traced computation is the same for both (the same Keras layers with the same configurations,
activations, loss, and the adapter's reading of them), so a later ``fit`` of the same model,
or of another model built the same way (the seed-000 author's three models; a learning-rate
sweep), reuses what the first compiled. Every variable the computations read is an argument
(``StatelessScope``), none is baked into them, so sharing them changes no number.
"""

from __future__ import annotations

import json
import warnings
import weakref

import keras

# XLA's LLVM back end at -O0: a third of the compile time, a few milliseconds more per probed step (JAX only);
# the computations run at every probed step of the standard preset are compiled as XLA does by default (the
# seed-000 fit: forward_and_loss 3.3 -> 2.2 ms, training_grad 1.2 -> 1.0 ms; 35 ms less a warm fit, 0.2 s more
# its first)
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
HOT = ("forward_and_loss", "training_grad", "forward")


class Structure:
    """An adapter as the computations' static argument: equal (and hashed) by :func:`signature`;
    the adapter itself (held weakly) is read only while the backend traces."""

    def __init__(self, adapter, key):
        self.key, self._adapter = key, weakref.ref(adapter)

    @property
    def adapter(self):
        return self._adapter()

    def __eq__(self, other):
        return isinstance(other, Structure) and self.key == other.key

    def __hash__(self):
        return hash(self.key)


def signature(a) -> tuple:
    """What the traced computations of adapter ``a`` depend on besides their array arguments. Models
    built from Keras's own layers (Sequential, functional) compare by configuration, with layer names
    numbered by position; anything else (a subclassed model, a custom or Lambda layer: code and state
    outside any configuration) only with itself (a weak reference: its later fits still share)."""
    model = a.model
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    own = type(model).__module__ in ("keras.src.models.sequential", "keras.src.models.functional") and all(
        type(layer).__module__.startswith("keras.") and not isinstance(layer, keras.layers.Lambda) for layer in layers)
    reading = (a.onehot, a.from_logits, a.clip, a.fn, repr(sorted(a.fn_kwargs.items())), a.token_inputs,
               a.sigmoid_logits, None if a.softmax_layer is None else layers.index(a.softmax_layer),
               keras.config.epsilon(), keras.config.image_data_format(), keras.backend.floatx())
    if not own:
        return ("model", weakref.ref(model), reading)
    names = {layer.name: f"#{i}" for i, layer in enumerate(layers)}

    def numbered(c):
        if isinstance(c, dict):
            return {k: numbered(v) for k, v in c.items()}
        if isinstance(c, (list, tuple)):
            return [numbered(v) for v in c]
        return names.get(c, c) if isinstance(c, str) else c

    try:
        with warnings.catch_warnings():   # Keras warns about functions it cannot serialize: those are keyed below
            warnings.simplefilter("ignore")
            config = json.dumps(numbered(model.get_config()), sort_keys=True, default=repr)
        loss = model.loss if isinstance(model.loss, str) else weakref.ref(model.loss)   # a loss object: itself
    except Exception:   # noqa: BLE001 - a configuration that does not serialize: this model shares with itself only
        return ("model", weakref.ref(model), reading)
    # the activations (and any function a layer calls) by identity: two lambdas serialize alike
    functions = tuple(getattr(layer, "activation", None) for layer in layers)
    return ("config", config, functions, loss, getattr(model, "_call_has_training_arg", True), reading)


def forward(s, arrays, non_trainable, x):
    return s.adapter._logits_and_taps(arrays, non_trainable, x)


def logits_vjp(s, arrays, non_trainable, x, g):
    a = s.adapter
    return a.ops.vjp(lambda q: a._logits_and_taps(q, non_trainable, x)[0], arrays, g)


def loss_and_grad(s, out, y):
    """The per-sample losses and the gradient of their sum in one call: a sample's loss depends on its own
    output row only, so any vector-Jacobian product is that gradient's rows scaled (_Loss.backward)."""
    a = s.adapter
    return a._loss_arrays(out, y), a.ops.value_and_grad(lambda q: keras.ops.sum(a._loss_arrays(q[0], y)), [out])[1][0]


def forward_and_loss(s, arrays, non_trainable, x, y):
    """The probes' forward pass: the logits and taps, the per-sample losses and their gradient (one call)."""
    out, taps = forward(s, arrays, non_trainable, x)
    return (out, taps, *loss_and_grad(s, out, y))


def activation_loss(key, logits, target):
    """Keras's loss of ``logits`` through the output's activation: ``key`` = (the loss function, its
    arguments as items, whether the activation is a sigmoid, else a softmax)."""
    from .._keras_adapter import SIGMOID, SOFTMAX

    fn, kwargs, sigmoid = key
    return fn(target, (SIGMOID if sigmoid else SOFTMAX)(logits), **dict(kwargs))


def objective_grad(s, arrays, non_trainable, x, y):
    a = s.adapter
    return a.ops.value_and_grad(lambda q: a._objective(q, non_trainable, x, y), arrays)


def objective_hvp(s, arrays, v, non_trainable, x, y):
    a = s.adapter
    return a.ops.hvp(lambda q: a._objective(q, non_trainable, x, y), arrays, v)


def training_grad(s, trainable, non_trainable, metrics, x, y, sample_weight):
    a = s.adapter
    return a.ops.value_and_grad(
        lambda q: training_loss(a.model, q, non_trainable, metrics, x, y, sample_weight), trainable)


_compiled: dict = {}


def compiled(ops, fn):
    """``fn`` compiled by the backend (``ops``), one per process: JAX's cache keys on it, its first (static)
    argument and the shapes of the others."""
    key = (ops.__name__, fn.__name__)
    if key not in _compiled:
        _compiled[key] = ops.jit(fn)
    return _compiled[key]


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
