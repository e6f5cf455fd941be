"""Tiny synthetic data sets for the gallery's programs: a few hundred rows, learnable in a
few epochs, so every program (and its fixed twin) runs in about a second."""

import numpy as np


def blobs(n=300, classes=3, features=8, seed=0, spread=1.0):
    """Classes as Gaussian blobs around random centres: (X float32 (n, features), y int64 (n,))."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    X = centres[y] + rng.normal(0, spread, size=(n, features))
    return X.astype("float32"), y.astype("int64")


def pixels(n=300, classes=3, side=8, seed=0):
    """8x8 'images' with values 0..255 (uint8 as loaded from disk): class c lights its own band of rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    X = rng.integers(0, 60, size=(n, side, side))
    for c in range(classes):
        X[y == c, 2 * c:2 * c + 2, :] += 180
    return np.clip(X, 0, 255).astype("uint8"), y.astype("int64")


def regression(n=300, features=6, seed=0, noise=0.1):
    """y = a smooth nonlinear function of X (unit scale): (X float32, y float32 (n,))."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.3 * X[:, 3] + noise * rng.normal(size=n)
    return X.astype("float32"), y.astype("float32")


def multilabel(n=300, features=8, labels=4, seed=0):
    """Several labels per row: (X, Y float32 (n, labels) of 0/1), about two labels on per row."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    W = rng.normal(size=(features, labels))
    Y = (X @ W > 0).astype("float32")
    return X.astype("float32"), Y
