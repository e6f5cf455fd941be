"""Keras, 3 classes with one-hot targets: sigmoid outputs under categorical cross-entropy.
Root cause: categorical_crossentropy expects a softmax distribution over the classes."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("output-loss-mismatch",)
CATEGORY = "output activation x loss"


def main(fixed=False, study="k02", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    Y = np.eye(3, dtype="float32")[y]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax" if fixed else "sigmoid")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, Y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
