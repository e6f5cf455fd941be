"""Keras, 4 classes: the last Dense has no activation but the loss reads probabilities.
Root cause: sparse_categorical_crossentropy (from_logits=False) on a linear output."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("output-loss-mismatch",)
CATEGORY = "output activation x loss"


def main(fixed=False, study="k03", db="gallery.db", verbose=True):
    X, y = blobs(classes=4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(4, activation="softmax" if fixed else None)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
