"""scikit-learn's bundled data sets, split into training and test rows."""

from __future__ import annotations

import numpy as np

from ._dataset import DataError, Dataset

SKLEARN_SETS = ("digits", "breast_cancer", "wine", "diabetes", "iris")


def _split(X, y, test_fraction: float, seed: int, stratify: bool, source: str = "the data"):
    from sklearn.model_selection import train_test_split
    try:
        return train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y if stratify else None)
    except ValueError as e:   # too few rows (or, stratified, too few of a class) for a test split
        raise DataError(f"{source}: {len(X)} row(s) cannot be split into training and test rows with data.test_fraction"
                        f" = {test_fraction:g} ({str(e).split('. ')[0].rstrip('.')}); add rows, give a test set "
                        f"(X_test, y_test in a .npz) or lower data.test_fraction") from None


def load_sklearn(name: str, test_fraction: float = 0.2, split_seed: int = 0, holdout: bool = True) -> Dataset:
    """A scikit-learn bundled data set, split once (stratified for classification); with
    ``holdout=False`` not split: every row is trained on and evaluated ("test" = training rows)."""
    import sklearn.datasets as skd

    if name not in SKLEARN_SETS:
        raise DataError(f"unknown scikit-learn data set {name!r}; choose one of {', '.join(SKLEARN_SETS)}")
    bunch = getattr(skd, f"load_{name}")()
    X = np.asarray(bunch.data)
    regression = name == "diabetes"
    y = np.asarray(bunch.target, dtype=np.float64 if regression else np.int64)
    if holdout:
        Xtr, Xte, ytr, yte = _split(X, y, test_fraction, split_seed, stratify=not regression)
    else:
        Xtr, Xte, ytr, yte = X, X, y, y
    if regression:
        return Dataset(name, Xtr, ytr[:, None], Xte, yte[:, None], "regression", 0)
    return Dataset(name, Xtr, ytr, Xte, yte, "classification", int(y.max()) + 1)


def load(data, data_dir, trajectory) -> Dataset:
    return load_sklearn(data.dataset, data.test_fraction, data.split_seed, data.holdout)
