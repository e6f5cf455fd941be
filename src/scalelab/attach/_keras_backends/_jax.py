"""Keras on JAX: autodiff by ``jax.vjp``/``jax.grad``, and how the compiled step is called.

Keras's JAX train function is ``(state, iterator) -> (logs, state)``: the weights, the
optimizer's and the metrics' variables travel as arrays through the jitted step (donated:
the old state's buffers are reused), and the Keras variables hold nothing until the epoch
ends. So the probes read the state through a ``StatelessScope`` (every variable read gives
the state's array), before the step on the state that goes in, after it on the state that
comes out; the step gets the batch taken here as a one-batch iterator.
"""

from __future__ import annotations

import jax
import keras
import numpy as np


SOFTMAX = (jax.nn.softmax,)   # the backend's softmax functions a model may use as its output activation
SIGMOID = (jax.nn.sigmoid,)   # and its sigmoid functions


FUSED_LOSS = True   # the probes' forward pass and per-sample loss: one compiled call (``forward_and_loss``)


def jit(f):
    """``f(structure, *arrays)`` compiled once per structure and input shapes (JAX's eager ops would each
    compile on first use, slower still); see ``_compiled``."""
    from ._compiled import COMPILER_OPTIONS, HOT

    return jax.jit(f, static_argnums=0, compiler_options=None if f.__name__ in HOT else COMPILER_OPTIONS)


def array(a):
    """A numpy array as a JAX array (a transfer: ``jnp.asarray`` would compile a copy per shape)."""
    return jax.device_put(a)


def host(a):
    return a   # a JAX array: numpy reads it as it is


def value_and_grad(f, primals):
    return jax.value_and_grad(f)(list(primals))


def vjp(f, primals, cotangent):
    _, pullback = jax.vjp(f, list(primals))
    return pullback(cotangent)[0]


def hvp(f, primals, tangents):
    return jax.jvp(jax.grad(f), (list(primals),), (list(tangents),))[1]


def state_scope(model, state):
    """Every Keras variable of the step's state reads as the state's array."""
    variables = (model.trainable_variables, model.non_trainable_variables,
                 model.optimizer.variables if model.optimizer is not None else [], model.metrics_variables)
    return keras.StatelessScope(state_mapping=[(v, a) for vs, arrays in zip(variables, state) for v, a in zip(vs, arrays)
                                               if a is not None])


def wrap(train_function, observer):
    """``train_function(state, iterator)`` observed: see the module's docstring."""
    model = observer.model
    metrics = model.metrics_variables
    total, count = (next(i for i, m in enumerate(metrics) if m is v) for v in model._loss_tracker.variables)

    def in_scope(state, fn, *args):
        with state_scope(model, state):
            fn(*args)

    def observed(state, iterator):
        if not observer.due():
            logs, state = train_function(state, iterator)
            observer.contained("after the step", observer.keep, logs)
            return logs, state
        observer.flush()
        observer.contained("before the step", observer.running, state[3][total], state[3][count])
        data = next(iterator)
        observer.probing("before the step", in_scope, state, observer._before, data)
        logs, state = train_function(state, iter([data]))
        loss = (float(np.asarray(state[3][total])), float(np.asarray(state[3][count])))
        observer.probing("after the step", in_scope, state, observer._after, *loss)
        return logs, state

    return observed
