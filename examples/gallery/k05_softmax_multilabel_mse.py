"""Keras, multi-label tagging (several tags per row): softmax output trained with MSE.
Root cause: a softmax's outputs sum to 1, so it cannot predict two labels at once."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import multilabel  # noqa: E402

ROOT_CAUSE = ("output-loss-mismatch",)
CATEGORY = "output activation x loss"


def main(fixed=False, study="k05", db="gallery.db", verbose=True):
    X, Y = multilabel()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(4, activation="sigmoid" if fixed else "softmax")])
    model.compile(optimizer="adam", loss="binary_crossentropy" if fixed else "mse")
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, Y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
