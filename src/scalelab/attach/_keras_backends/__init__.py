"""``scalelab.keras.Diagnose`` on Keras's TensorFlow and JAX backends, where Keras compiles
the training step (``tf.function``, ``jax.jit``) so a Python wrapper inside it would run
only when the step is traced.

The design: the user's step is never changed or recompiled; it is observed from outside.
``_observe`` wraps ``model.train_function`` (the compiled step Keras calls once per batch):
at a step where probes are due it takes the batch from Keras's own iterator, runs the
before-update probes on the current weights, recomputes the batch's gradient on the
backend (the same stateless Keras loss, the same random state; nothing assigned), then
hands that very batch to Keras's own compiled step and runs the after-update probes. At
other steps it only keeps the running mean loss Keras's step returns (for divergence; the
epoch's loss is Keras's own), so those steps cost a few microseconds. The weights, the
optimizer's state and the random streams are only read, so the losses are those of the
run without the callback (tested bit for bit).

The probes themselves are scalelab's, unchanged, computing in torch on the step view:
``_adapter.CompiledAdapter`` is :class:`~scalelab.attach._keras_adapter.KerasAdapter` (its layers,
taps, loss and optimizer code, shared with the torch backend) whose forward pass, per-sample
loss and training objective are ``torch.autograd.Function`` s computed by Keras on the
backend, with arrays crossing at the boundary and the gradient taken by the backend's own
autodiff (``tf.GradientTape``, ``jax.vjp``; the objective twice, for the Hessian). What
differs per backend is small: ``_tensorflow`` and ``_jax`` (array conversion, VJP,
gradient, Hessian-vector product, and how the compiled step is called).
"""

from __future__ import annotations

import keras


def ops():
    """The running backend's part: TensorFlow or JAX."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from . import _tensorflow as part
    elif backend == "jax":
        from . import _jax as part
    else:
        raise RuntimeError(f"scalelab.keras.Diagnose: Keras backend {backend!r} is not supported; "
                           "set KERAS_BACKEND=tensorflow, jax or torch before keras is imported")
    return part


def adapter(model, skipped: list | None = None):
    from ._adapter import CompiledAdapter

    return CompiledAdapter(model, ops(), skipped)


def observe(model, session, total_steps: int, steps_per_epoch: int, probe_data, epochs: int | None = None,
            fit_steps_per_epoch: int | None = None):
    """Watch ``model.train_function`` for one ``fit``; returns the observer (``.remove()`` undoes it).
    ``epochs`` and ``fit_steps_per_epoch``: what ``fit`` was asked for, recorded in the model's description."""
    from ._observe import StepObserver

    return StepObserver(model, session, ops(), total_steps, steps_per_epoch, probe_data, epochs, fit_steps_per_epoch)
