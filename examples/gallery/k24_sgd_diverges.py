"""Keras regression with SGD(learning_rate=2.0): the loss becomes nan.
Root cause: a learning rate far beyond what SGD tolerates on this problem."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import regression  # noqa: E402

ROOT_CAUSE = ("diverged-at-lr", "learning-rate")
CATEGORY = "learning rate"


def main(fixed=False, study="k24", db="gallery.db", verbose=True):
    X, y = regression()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01 if fixed else 2.0), loss="mse")
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
