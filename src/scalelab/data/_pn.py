"""The p≫n data of cross-validated studies: a deterministic two-class generator with a known
Bayes accuracy, and a p≫n cut of real Fashion-MNIST (two similar classes).

``pn-synthetic``: y ~ Bernoulli(balance); x | y ~ N(y·δ·e_S, Σ), where S holds the first
``informative`` features and Σ is block diagonal: blocks of ``block`` features with
correlation ``rho`` inside a block. Then a share ``label_noise`` of labels is flipped. The
Bayes rule is linear discriminant analysis with the true parameters, and with
Δ² = δ² e_Sᵀ Σ⁻¹ e_S (the Mahalanobis distance between the class means), t = log(π₀/π₁):

    clean Bayes accuracy  a = π₁ Φ(Δ/2 − t/Δ) + π₀ Φ(Δ/2 + t/Δ)
    with flipped labels   a_η = (1 − η) a + η (1 − a)

(flipping with η < 1/2 keeps the same decision rule; the observed label agrees with it
when it was right and not flipped, or wrong and flipped).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ._dataset import Dataset, DataError


def _block_sizes(p: int, block: int) -> list[int]:
    return [min(block, p - s) for s in range(0, p, block)]


def bayes_accuracy(p: int = 10_000, informative: int = 100, block: int = 10, rho: float = 0.5,
                   class_sep: float = 2.0, label_noise: float = 0.05, balance: float = 0.5) -> float:
    """The accuracy of the Bayes rule on :func:`make_pn_classification`'s labels (module docstring)."""
    delta2, left = 0.0, informative
    for size in _block_sizes(p, block):
        m = min(left, size)
        if m <= 0:
            break
        S = np.full((size, size), rho) + (1 - rho) * np.eye(size)
        mu = np.zeros(size)
        mu[:m] = class_sep
        delta2 += float(mu @ np.linalg.solve(S, mu))
        left -= m
    d = math.sqrt(delta2)
    t = math.log((1 - balance) / balance)
    a = balance * stats.norm.cdf(d / 2 - t / d) + (1 - balance) * stats.norm.cdf(d / 2 + t / d)
    return float((1 - label_noise) * a + label_noise * (1 - a))


def make_pn_classification(n: int = 100, p: int = 10_000, informative: int = 100, block: int = 10,
                           rho: float = 0.5, class_sep: float = 2.0, label_noise: float = 0.05,
                           balance: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of ``p`` float32 features and int64 labels, the same for the same arguments.

    Each block of correlated features is √ρ·z + √(1−ρ)·e_j with z shared by the block (an
    equicorrelated block), so no p × p matrix is ever formed."""
    if informative > p:
        raise DataError(f"informative = {informative} is more than p = {p} features")
    rng = np.random.default_rng([seed, 17])
    y = (rng.random(n) < balance).astype(np.int64)
    if len(np.unique(y)) < 2:   # a tiny n could draw one class only: make both present
        y[: max(1, round(n * balance))], y[max(1, round(n * balance)):] = 1, 0
    X = np.empty((n, p), dtype=np.float32)
    start = 0
    for size in _block_sizes(p, block):
        z = rng.standard_normal((n, 1))
        e = rng.standard_normal((n, size))
        X[:, start: start + size] = math.sqrt(rho) * z + math.sqrt(1 - rho) * e
        start += size
    X[:, :informative] += (class_sep * y)[:, None].astype(np.float32)
    flip = rng.random(n) < label_noise
    y = np.where(flip, 1 - y, y)
    return X, y


def fmnist_pair(data_dir: str | None, classes=(0, 6), n_dev: int = 80, n_test: int = 20, repeat: int = 0,
                seed: int = 0, verify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A p≫n task from real Fashion-MNIST: ``n_dev`` development rows of two classes drawn from
    the official training images, a new draw for every ``repeat`` (balanced), and ``n_test``
    rows from the official test images (the same for every repeat, disjoint from every draw by
    construction). Labels are 0 for ``classes[0]``, 1 for ``classes[1]``; pixels stay uint8."""
    from ._fashion_mnist import load_fashion_mnist

    ds = load_fashion_mnist(data_dir, verify=verify)

    def draw(X, y, n, rng):
        half = [n // 2, n - n // 2]
        rows = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, half)]
        idx = rng.permutation(np.concatenate(rows))
        return X[idx], (y[idx] == classes[1]).astype(np.int64)

    Xd, yd = draw(ds.X_train, ds.y_train, n_dev, np.random.default_rng([seed, 29, repeat]))
    Xt, yt = draw(ds.X_test, ds.y_test, n_test, np.random.default_rng([seed, 31]))
    return Xd, yd, Xt, yt


def generator_args(g) -> dict:
    """The generator's keyword arguments from a ``data.generator`` section (defaults when None)."""
    from .._spec._cv import GeneratorSpec

    g = g or GeneratorSpec()
    return dict(p=g.p, informative=g.informative, block=g.block, rho=g.rho, class_sep=g.class_sep,
                label_noise=g.label_noise, balance=g.balance)


def load_pn_dataset(data, data_dir: str | None = None) -> Dataset:
    """The :class:`Dataset` a ``data`` section of dataset pn-synthetic or fmnist-pair names:
    all ``n`` rows in X_train (the study's folds split them); fmnist-pair gives repeat 0's
    draw and the test rows."""
    from .._spec._cv import GeneratorSpec

    g = data.generator or GeneratorSpec()
    if data.dataset == "pn-synthetic":
        X, y = make_pn_classification(n=g.n, seed=data.split_seed, **generator_args(g))
        meta = dict(bayes_accuracy=bayes_accuracy(**generator_args(g)))
        return Dataset("pn-synthetic", X, y, X[:0], y[:0], "classification", 2, meta)
    n_test = max(2, round(g.n * data.test_fraction))
    Xd, yd, Xt, yt = fmnist_pair(data.dir or data_dir, tuple(g.classes), g.n - n_test, n_test, 0, data.split_seed,
                                 data.verify)
    return Dataset("fmnist-pair", Xd, yd, Xt, yt, "classification", 2, dict(classes=list(g.classes)))


def load(data, data_dir, trajectory) -> Dataset:
    return load_pn_dataset(data, data_dir)
