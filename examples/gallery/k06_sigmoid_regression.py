"""Keras regression whose targets run from about -3 to 3, with a sigmoid on the output.
Root cause: a bounded output activation for unbounded regression targets."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import regression  # noqa: E402

ROOT_CAUSE = ("output-loss-mismatch",)
CATEGORY = "output activation x loss"


def main(fixed=False, study="k06", db="gallery.db", verbose=True):
    X, y = regression()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1, activation=None if fixed else "sigmoid")])
    model.compile(optimizer="adam", loss="mse")
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
