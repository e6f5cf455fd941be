"""Keras, sensor readings around 5.0 that vary by a few hundredths.
Root cause: inputs offset far from zero relative to their spread."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("input-offset",)
CATEGORY = "offset inputs"


def main(fixed=False, study="k09", db="gallery.db", verbose=True):
    X, y = blobs(classes=2)
    X = 5.0 + 0.02 * X                        # as the instrument reports them
    if fixed:
        X = (X - X.mean(0)) / X.std(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
