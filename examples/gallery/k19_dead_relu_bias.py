"""Keras, a hidden layer initialized with a large negative bias (meant to 'sparsify' it).
Root cause: dead ReLU units (zero for every input, so they never get a gradient)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("dead-units-at-start", "dead-units")
CATEGORY = "dead units"


def main(fixed=False, study="k19", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    keras.utils.set_random_seed(0)
    bias = "zeros" if fixed else keras.initializers.Constant(-20.0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu", bias_initializer=bias),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
