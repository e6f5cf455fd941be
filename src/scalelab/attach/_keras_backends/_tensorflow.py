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


def jit(f):
    """TensorFlow runs the probes' computations eagerly (no tracing: a few small ops per probe step)."""
    return f


def array(a):
    return tf.convert_to_tensor(a)


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
    total, count = observer.model._loss_tracker.variables

    def observed(iterator):
        if not observer.due():
            observer.skip_step()
            logs = train_function(iterator)
        else:
            if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
                batch = iterator.get_next_as_optional()
                if not batch.has_value():
                    raise StopIteration   # as Keras's own function does at the end of the data
                data = batch.get_value()
            else:
                data = next(iter(iterator))
            observer.before(data)
            logs = train_function([data])
        observer.after(float(total.value.numpy()), float(count.value.numpy()))
        return logs

    return observed
