"""Keras, an XOR-like problem with two hidden Dense layers and no activation on them.
Root cause: no nonlinearity between the hidden layers (the model is linear)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

import scalelab.keras  # noqa: E402

ROOT_CAUSE = ("no-nonlinearity",)
CATEGORY = "no nonlinearity"


def main(fixed=False, study="k13", db="gallery.db", verbose=True):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)).astype("float32")
    y = (X[:, 0] * X[:, 1] > 0).astype("float32")
    act = "relu" if fixed else None
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation=act),
                              keras.layers.Dense(16, activation=act), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    diag = scalelab.keras.Diagnose(study, db=db, verbose=verbose)   # the one added line
    model.fit(X, y, epochs=15, batch_size=16, callbacks=[diag], verbose=0)
    return diag.findings


if __name__ == "__main__":
    main()
