"""Keras yes/no model trained with MSE on labels 1 and 2 (as in the CSV file).
Root cause: labels outside what the sigmoid output can reach (0 to 1)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import blobs  # noqa: E402

ROOT_CAUSE = ("labels-out-of-range", "output-loss-mismatch")
CATEGORY = "wrong labels"


def main(fixed=False, study="k15", db="gallery.db", verbose=True):
    X, y = blobs(classes=2)
    y = y + 1                                  # the file's labels: 1 = no, 2 = yes
    if fixed:
        y = y - 1
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="mse")
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y.astype("float32"), epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
