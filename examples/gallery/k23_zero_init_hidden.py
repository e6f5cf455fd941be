"""Keras, hidden layer initialized with zeros ('to start from a neutral model').
Root cause: symmetric initialization (all hidden units identical forever)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("symmetric-init",)
CATEGORY = "initialization"


def main(fixed=False, study="k23", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    keras.utils.set_random_seed(0)
    init = "glorot_uniform" if fixed else "zeros"
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="tanh", kernel_initializer=init),
                              keras.layers.Dense(3, activation="softmax", kernel_initializer=init)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
