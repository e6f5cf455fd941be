"""What every loader returns: a :class:`Dataset` (arrays in their storage dtype: uint8 for
images, int64 for token ids; scaling happens inside training, per model), its train /
validation / test :class:`Split`, and :class:`DataError`, the one-line reason a data set
cannot be used."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._errors import DataError


@dataclass
class Dataset:
    """Arrays of one data set.

    X_train : ndarray of shape (n_train, n_features), uint8 or float
    y_train : ndarray of shape (n_train,) int64 labels, or (n_train, n_targets) float
    X_test, y_test : the same for the held-out test set (may be empty)
    task : "classification" or "regression"
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str = "classification"
    n_classes: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])



@dataclass
class Split:
    """A data set split into train / validation / test arrays (numpy, storage dtype)."""

    name: str
    task: str
    n_classes: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _check_finite(X: np.ndarray, y: np.ndarray, source: str) -> None:
    for what, arr in (("X", X), ("y", y)):
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise DataError(f"{source}: {what} has a NaN or inf value (first at index {tuple(int(i) for i in bad)}); "
                            f"remove or impute such rows before training")


def _as_target(y: np.ndarray, task: str | None, source: str):
    y = np.asarray(y)
    if task is None:
        task = "classification" if (y.dtype.kind in "iub" or
                                    (y.dtype.kind == "f" and y.ndim == 1 and np.all(y == np.round(y))
                                     and len(np.unique(y)) <= 50)) else "regression"
    if task == "classification":
        if y.ndim != 1:
            raise DataError(f"{source}: classification labels must be one column, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise DataError(f"{source}: classification labels must be whole numbers; set task = 'regression'")
        if y.dtype.kind == "f" and np.abs(y).max() >= 2 ** 62:
            raise DataError(f"{source}: class label {y.flat[np.abs(y).argmax()]:g} is far too large; number the "
                            f"classes 0..K-1")
        y = y.astype(np.int64)
        if y.min() < 0:
            raise DataError(f"{source}: class labels must be >= 0, found {int(y.min())}")
        n_distinct = len(np.unique(y))
        if y.max() >= max(1000, 10 * n_distinct):   # one output per class: a stray label would allocate GiBs
            raise DataError(f"{source}: class label {int(y.max())} with only {n_distinct} distinct labels; "
                            f"number the classes 0..K-1 (or set task = 'regression')")
        return y, task, int(y.max()) + 1
    y = y.astype(np.float64)
    return (y[:, None] if y.ndim == 1 else y), task, 0
