"""Keras, small images read as 0..255 pixel values and fed as they are.
Root cause: unscaled inputs (the first layer starts ~100x beyond its initialization's scale)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from _data import pixels  # noqa: E402

ROOT_CAUSE = ("input-scale",)
CATEGORY = "unscaled inputs"


def main(fixed=False, study="k08", db="gallery.db", verbose=True):
    X, y = pixels()
    X = X.astype("float32")
    if fixed:
        X = X / 255.0
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
