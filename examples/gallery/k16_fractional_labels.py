"""Keras, 'classes' that are a continuous score in [0, 3) given to a classification loss.
Root cause: fractional class labels (cast to integers silently)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("fractional-labels",)
CATEGORY = "wrong labels"


def main(fixed=False, study="k16", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    score = y + np.random.default_rng(1).uniform(0, 0.999, size=len(y))   # rating with decimals
    labels = np.floor(score) if fixed else score
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, labels.astype("float32"), epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
