"""Keras, data sorted by class (as exported) and fit with shuffle=False.
Root cause: sorted labels without shuffling: each stretch of steps sees one class."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("sorted-labels",)
CATEGORY = "wrong labels"


def main(fixed=False, study="k17", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, shuffle=fixed, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
