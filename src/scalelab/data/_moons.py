"""``moons``: two interleaving half circles (scikit-learn's ``make_moons``), the smallest
problem no linear model separates: a network without a nonlinearity between its layers
stays near 85% accuracy, one with a ReLU layer reaches ~100%. ``data.n_samples`` training
rows (default 1000) and ``data.test_fraction`` of that again as test rows, with Gaussian
noise of std ``data.noise``; training and test rows come from two seeds of
``data.split_seed``."""

from __future__ import annotations

from ._dataset import Dataset


def load(data, data_dir, trajectory) -> Dataset:
    from sklearn.datasets import make_moons

    n = data.n_samples or 1000
    Xtr, ytr = make_moons(n, noise=data.noise, random_state=2 * data.split_seed)
    Xte, yte = make_moons(max(2, round(n * data.test_fraction)), noise=data.noise, random_state=2 * data.split_seed + 1)
    return Dataset("moons", Xtr.astype("float32"), ytr.astype("int64"), Xte.astype("float32"), yte.astype("int64"),
                   "classification", 2)
