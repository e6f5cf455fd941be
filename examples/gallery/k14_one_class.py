"""Keras, labels built with a threshold no row reaches: every label is 0.
Root cause: the labels hold one class."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("one-class-labels",)
CATEGORY = "wrong labels"


def main(fixed=False, study="k14", db="gallery.db", verbose=True):
    X, _ = blobs(classes=2)
    score = X[:, 0] + X[:, 1]
    y = (score > (0.0 if fixed else 100.0)).astype("int64")   # the threshold was meant in other units
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
