"""Keras, a 10-layer sigmoid network: the first layers do not learn.
Root cause: vanishing gradients across the layers."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("vanishing-gradients",)
CATEGORY = "vanishing gradients"


def main(fixed=False, study="k21", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    X = (X - X.mean(0)) / X.std(0)
    keras.utils.set_random_seed(0)
    act, init = ("relu", "he_normal") if fixed else ("sigmoid", "glorot_uniform")
    hidden = [keras.layers.Dense(32, activation=act, kernel_initializer=init) for _ in range(10)]
    model = keras.Sequential([keras.Input((8,)), *hidden, keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
