"""Keras regression of prices in dollars (tens of thousands): the model predicts the mean.
Root cause: unscaled regression targets."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import regression  # noqa: E402

ROOT_CAUSE = ("target-scale",)
CATEGORY = "unscaled targets"


def main(fixed=False, study="k10", db="gallery.db", verbose=True):
    X, y = regression()
    price = 50_000 + 20_000 * y
    target = (price - price.mean()) / price.std() if fixed else price
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, target, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
