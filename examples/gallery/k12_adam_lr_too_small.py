"""Keras, Adam with learning_rate=1e-7 (a typo for 1e-3): the loss does not move.
Root cause: a learning rate too small for the run's number of steps."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("learning-rate",)
CATEGORY = "learning rate"


def main(fixed=False, study="k12", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3 if fixed else 1e-7),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
