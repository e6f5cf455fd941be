"""Keras on TensorFlow: autodiff by ``tf.GradientTape``, and how the compiled step is called.

Keras's train function takes an iterator: a ``tf.data`` one runs the whole step in one
``tf.function`` (batch fetch included), any other iterable has each of its batches handed
to Keras's own compiled single step. So at a probed step the batch is fetched here, eagerly,
and given to the train function as a one-batch list: the same compiled step on the same batch.
"""

from __future__ import annotations

import tensorflow as tf

ZERO = tf.UnconnectedGradients.ZERO


SOFTMAX = (tf.nn.softmax,)   # the backend's softmax functions a model may use as its output activation
SIGMOID = (tf.nn.sigmoid,)   # and its sigmoid functions


# the loss of the logits and its gradient run eagerly: a TensorFlow graph flushes float32 denormals to zero, so a
# saturated sigmoid's gradient (e^-100) would read as exactly zero there, and the zero-gradient probe would count
# it (eagerly it is not zero: the semantics the probes report, tested); the forward pass is traced (FUSED_LOSS)
EAGER = {"loss_and_grad", "activation_loss"}
FUSED_LOSS = False


def jit(f):
    """``f(structure, *arrays)`` as a ``tf.function`` per structure (see ``_compiled``): traced once per
    structure and input shapes, as JAX compiles it (eagerly, each of its ops cost ~50 us of Python and
    dispatch on a CPU: 13 ms for the seed-000 model's gradient, 25x the traced call). The structure is not
    an argument of the traced function (TensorFlow would key on its identity: one trace per model); the
    one of the current call is, while it traces."""
    if f.__name__ in EAGER:
        return f
    traced: dict = {}

    def call(structure, *args):
        hit = traced.get(structure)
        if hit is None:
            if len(traced) >= 32:   # models that share with themselves only (see _compiled.signature): a sweep of
                traced.clear()      # them keeps the last few traces, not one per model
            current = [structure]
            hit = traced[structure] = (current, tf.function(lambda *a: f(current[0], *a), reduce_retracing=True))
        hit[0][0] = structure
        # variables as their values: a traced function would capture each variable object of its own
        return hit[1](*tf.nest.map_structure(_value, args))

    return call


def _value(a):
    return tf.convert_to_tensor(a) if isinstance(a, tf.Variable) else a


def array(a):
    return tf.convert_to_tensor(a)


def host(a):
    """A variable's value (or a tensor) as something numpy reads: one read op (``np.array`` of a variable
    costs 5x more, ~100 us; the probes read a dozen per probed step)."""
    if type(a).__name__ == "ResourceVariable":   # a plain one (a distributed variable: as numpy reads it)
        return tf.raw_ops.ReadVariableOp(resource=a.handle, dtype=a.dtype)
    return a


def value_and_grad(f, primals):
    with tf.GradientTape() as tape:
        tape.watch(primals)
        value = f(primals)
    return value, tape.gradient(value, primals, unconnected_gradients=ZERO)


def vjp(f, primals, cotangent):
    with tf.GradientTape() as tape:
        tape.watch(primals)
        out = f(primals)
    return tape.gradient(out, primals, output_gradients=cotangent, unconnected_gradients=ZERO)


def hvp(f, primals, tangents):
    with tf.GradientTape() as outer:
        outer.watch(primals)
        with tf.GradientTape() as inner:
            inner.watch(primals)
            value = f(primals)
        grads = inner.gradient(value, primals, unconnected_gradients=ZERO)
    return outer.gradient(grads, primals, output_gradients=tangents, unconnected_gradients=ZERO)


def wrap(train_function, observer):
    """``train_function(iterator)`` observed: see the module's docstring."""
    total, count = (v.value for v in observer.model._loss_tracker.variables)

    def observed(iterator):
        if not observer.due():
            logs = train_function(iterator)
            observer.contained("after the step", observer.keep, logs)
            return logs
        observer.flush()
        observer.contained("before the step", observer.running, host(total), host(count))
        if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                raise StopIteration   # as Keras's own function does at the end of the data
            data = batch.get_value()
        else:
            data = next(iter(iterator))
        observer.before(data)
        logs = train_function([data])
        observer.after(float(total.numpy()), float(count.numpy()))
        return logs

    return observed
