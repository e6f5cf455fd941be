"""Keras fraud detector, 95% of rows are 'no fraud': accuracy 95% and it never says 'fraud'.
Root cause: class imbalance, the model answers the majority class."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import scalelab.keras  # noqa: E402

ROOT_CAUSE = ("accuracy-at-majority", "class-imbalance")
CATEGORY = "wrong labels"


def main(fixed=False, study="k25", db="gallery.db", verbose=True):
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.05).astype("float32")
    X = rng.normal(size=(400, 8)).astype("float32")
    X[:, 0] += 0.8 * y                         # a faint signal
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    weights = {0: 1.0, 1: 19.0} if fixed else None
    model.fit(X, y, epochs=15, batch_size=16, class_weight=weights, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
