"""Keras regression, a feature column with missing values read as NaN: the loss is nan from the start.
Root cause: NaN in the inputs."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import regression  # noqa: E402

ROOT_CAUSE = ("non-finite-data",)
CATEGORY = "bad data"


def main(fixed=False, study="k18", db="gallery.db", verbose=True):
    X, y = regression()
    X[::7, 3] = np.nan                          # missing sensor readings
    if fixed:
        X = np.nan_to_num(X)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
