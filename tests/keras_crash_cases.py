"""The Keras side of the crash matrix of issue 29 (tests/test_attach_crash_matrix.py): the
losses, target encodings, input kinds and model styles real scripts use, as ``k_cases()``,
and ``keras_fit`` (one case's epoch losses, with the given callbacks). Imported by the torch
test in-process and, on TensorFlow and JAX, by tests/keras_backend_worker.py in a subprocess
(Keras picks its backend at import: set KERAS_BACKEND before importing this)."""

import keras
import numpy as np
import pytest

N = 96


def rng():
    return np.random.default_rng(0)


L = keras.layers


def mlp(out, act, inp=(6,), hidden=8, **kw):
    return keras.Sequential([keras.Input(inp), L.Flatten(), L.Dense(hidden, activation="relu", **kw),
                             L.Dense(out, activation=act, **kw)])


def X(shape=(6,)):
    return rng().normal(size=(N, *shape)).astype("float32")


def ints(k):
    return rng().integers(0, k, size=N)


def k_cases():
    pd = pytest.importorskip("pandas")
    c = {}
    c["cce-onehot"] = lambda: (mlp(3, "softmax"), "categorical_crossentropy", X(), np.eye(3)[ints(3)], {})
    c["cce-logits"] = lambda: (mlp(3, None), keras.losses.CategoricalCrossentropy(from_logits=True), X(),
                               np.eye(3)[ints(3)], {})
    c["scce-1d"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", X(), ints(3), {})
    c["scce-logits-n1"] = lambda: (mlp(3, None), keras.losses.SparseCategoricalCrossentropy(from_logits=True), X(),
                                   ints(3)[:, None], {})
    c["bce-1d-float"] = lambda: (mlp(1, "sigmoid"), "binary_crossentropy", X(), ints(2).astype("float32"), {})
    c["bce-bool"] = lambda: (mlp(1, "sigmoid"), "binary_crossentropy", X(), ints(2).astype(bool), {})
    c["bce-logits-n1"] = lambda: (mlp(1, None), keras.losses.BinaryCrossentropy(from_logits=True), X(),
                                  ints(2)[:, None].astype("float32"), {})
    c["multilabel"] = lambda: (mlp(4, "sigmoid"), "binary_crossentropy", X(),
                               (rng().random((N, 4)) > .5).astype("float32"), {})
    c["mse"] = lambda: (mlp(1, None), "mse", X(), rng().normal(size=N), {})
    c["mae"] = lambda: (mlp(1, None), "mae", X(), rng().normal(size=(N, 1)), {})
    c["huber"] = lambda: (mlp(1, None), keras.losses.Huber(), X(), rng().normal(size=N), {})
    c["custom-fn"] = lambda: (mlp(1, None), lambda yt, yp: keras.ops.mean(keras.ops.abs(yt - yp) ** 3, axis=-1), X(),
                              rng().normal(size=(N, 1)), {})
    c["dataframe"] = lambda: (mlp(1, "sigmoid"), "binary_crossentropy", pd.DataFrame(X(), columns=list("abcdef")),
                              pd.Series(ints(2)), {})
    c["dataframe-probe-data"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", X(), ints(3),
                                         dict(probe_data=(pd.DataFrame(X()), pd.Series(ints(3)))))
    c["x-1d"] = lambda: (mlp(1, None, inp=(1,)), "mse", X(())[:, None][:, 0], rng().normal(size=N), {})
    c["images"] = lambda: (keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                                             L.Dense(3, activation="softmax")]),
                           "sparse_categorical_crossentropy", X((8, 8, 1)), ints(3), {})
    c["sequence-n-k-1"] = lambda: (keras.Sequential([keras.Input((5, 3)), L.LSTM(4, return_sequences=True),
                                                     L.Dense(1)]), "mse", X((5, 3)), rng().normal(size=(N, 5, 1)), {})
    c["zero-init"] = lambda: (mlp(3, "softmax", kernel_initializer="zeros"), "sparse_categorical_crossentropy", X(),
                              ints(3), {})
    c["validation-weights"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", X(), ints(3),
                                       dict(validation_data=(X()[:20], ints(3)[:20]), sample_weight=np.linspace(.5, 1, N)))

    def functional():
        i = keras.Input((6,))
        return keras.Model(i, L.Dense(2, activation="softmax")(L.Dense(8, activation="tanh")(i)))
    c["functional"] = lambda: (functional(), "sparse_categorical_crossentropy", X(), ints(2), {})

    def two_inputs():
        a, b = keras.Input((6,)), keras.Input((2,))
        return keras.Model([a, b], L.Dense(1)(L.Concatenate()([L.Dense(4, activation="relu")(a), b])))
    c["multi-input"] = lambda: (two_inputs(), "mse", [X(), X((2,))], rng().normal(size=N), {})

    def two_outputs():
        i = keras.Input((6,))
        h = L.Dense(8, activation="relu")(i)
        return keras.Model(i, [L.Dense(1, name="r")(h), L.Dense(2, activation="softmax", name="c")(h)])
    c["multi-output"] = lambda: (two_outputs(), ["mse", "sparse_categorical_crossentropy"], X(),
                                 [rng().normal(size=N), ints(2)], {})

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.h, self.o = L.Dense(8, activation="relu"), L.Dense(3)

        def call(self, x):
            return self.o(self.h(x))
    c["subclassed"] = lambda: (Sub(), keras.losses.SparseCategoricalCrossentropy(from_logits=True), X(), ints(3), {})

    class Seq(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return X()[i * 32:(i + 1) * 32], ints(3)[i * 32:(i + 1) * 32]
    c["pydataset"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", Seq(), None, {})

    def gen():
        while True:
            for i in range(3):
                yield X()[i * 32:(i + 1) * 32], ints(3)[i * 32:(i + 1) * 32]
    c["generator"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", gen(), None,
                              dict(steps_per_epoch=3))
    return c


KERAS_CASES = sorted(k_cases())


def cases_on(backend: str) -> list[str]:
    """The cases a backend's worker runs in `make test`: all of them, except on JAX, where each new
    model compiles Keras's step and the probes' computations (~2.3 s of CPU a case even with the
    worker's compilation cache, which reads the identical programs of a case's three fits back):
    every other case there; SCALELAB_FULL_MATRIX=1 runs them all (~57 s of CPU on JAX)."""
    import os

    if backend == "jax" and not os.environ.get("SCALELAB_FULL_MATRIX"):
        return KERAS_CASES[::2]
    return KERAS_CASES


# what the probes cannot read yet (one "not probed" line each): several inputs or outputs, a 1-D input
KERAS_PARTLY_PROBED = {"multi-input", "multi-output", "x-1d"}


def keras_fit(case, callbacks):
    keras.utils.set_random_seed(0)
    model, loss, x, y, kw = k_cases()[case]()
    probe_data = kw.pop("probe_data", None)
    for cb in callbacks:
        cb.probe_data = probe_data
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    kw = {"batch_size": 32, **kw} if y is not None else kw
    h = model.fit(x, y, epochs=2, verbose=0, shuffle=False, callbacks=callbacks, **kw)
    return h.history["loss"]


