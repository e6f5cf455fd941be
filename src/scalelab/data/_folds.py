"""Folds as a first-class object: a stratified test hold-out, then repeated stratified
k-fold on the development rows (scikit-learn's splitters), inner folds inside each outer
training set for nested selection, and an early-stopping split inside a training set.
Every split is checked for leaks before anything trains on it.

Where a trial sits is in its spec: ``cv.repeat``, ``cv.fold`` (-1: the final fit on every
development row, scored on the test rows) and ``cv.inner``. :func:`cv_split` turns that
into the engine's :class:`~scalelab._splits.Split`: ``X_train`` the rows it fits on,
``X_val`` the rows it is scored on, ``X_test`` the early-stopping rows (empty without).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from ._dataset import Dataset, DataError, Split


class LeakError(DataError):
    """A split whose held-out rows reached the fitting side: the study stops."""


def _rs(*key) -> int:
    """A scikit-learn random_state derived from the study's split seed and a position."""
    return int(np.random.default_rng([*key]).integers(2 ** 31 - 1))


@dataclass
class Plan:
    """The rows of a study: development rows per repeat (the same for every repeat unless the
    data set draws its own, as fmnist-pair does), the test rows, and the folds."""

    name: str
    dev: dict                     # repeat -> (X, y)
    X_test: np.ndarray
    y_test: np.ndarray
    folds: int
    inner_folds: int
    seed: int
    meta: dict = field(default_factory=dict)
    _outer: dict = field(default_factory=dict)

    def rows(self, repeat: int) -> tuple[np.ndarray, np.ndarray]:
        return self.dev[repeat if repeat in self.dev else 0]

    def outer(self, repeat: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``folds`` (train, validation) index pairs of ``repeat``: stratified, disjoint,
        every development row validated exactly once per repeat."""
        if repeat not in self._outer:
            y = self.rows(repeat)[1]
            skf = StratifiedKFold(self.folds, shuffle=True, random_state=_rs(self.seed, 41, repeat))
            self._outer[repeat] = list(skf.split(np.zeros(len(y)), y))
        return self._outer[repeat]

    def inner(self, repeat: int, fold: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Inner (train, validation) pairs inside outer training set ``fold``, as development-row indices."""
        tr = self.outer(repeat)[fold][0]
        y = self.rows(repeat)[1][tr]
        skf = StratifiedKFold(self.inner_folds, shuffle=True, random_state=_rs(self.seed, 43, repeat, fold))
        return [(tr[a], tr[b]) for a, b in skf.split(np.zeros(len(y)), y)]

    def indices(self, repeat: int, fold: int, inner: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(fit rows, scored rows) as development indices; the final fit (fold -1) scores the test rows (None)."""
        if fold == -1:
            return np.arange(len(self.rows(repeat)[1])), None
        if inner is None:
            return self.outer(repeat)[fold]
        return self.inner(repeat, fold)[inner]


_PLANS: dict[str, Plan] = {}


def make_plan(data, cv, data_dir: str | None = None) -> Plan:
    """The :class:`Plan` of a study's ``data`` and ``cv`` sections (cached per process)."""
    from ._pn import fmnist_pair
    from ._registry import load_dataset
    from ._tables import check_folds, read_table

    key = repr((data.model_dump(), cv.folds, cv.repeats, cv.inner_folds, cv.test_fraction, data_dir))
    if key in _PLANS:
        return _PLANS[key]
    seed = data.split_seed
    meta = {}
    if data.dataset == "fmnist-pair":
        g = data.generator
        from .._spec._cv import GeneratorSpec

        g = g or GeneratorSpec()
        n_test = max(2, round(g.n * cv.test_fraction))
        dev = {}
        for r in range(cv.repeats):
            Xd, yd, Xt, yt = fmnist_pair(data.dir or data_dir, tuple(g.classes), g.n - n_test, n_test, r, seed,
                                         data.verify)
            dev[r] = (Xd, yd)
        name, meta = "fmnist-pair", dict(classes=list(g.classes), draws="each repeat draws its own development rows")
    else:
        if data.dataset == "file":
            if not data.path:
                raise DataError("data.dataset = 'file' needs data.path (an .npz with X, y or a .csv)")
            t = read_table(data.path, data.target)
            X, y, name = t["X"], t["y"], t["source"]
            meta = dict(labels=t["labels"])
            given = "X_test" in t
        else:
            ds: Dataset = load_dataset(data, data_dir)
            X, y, name, meta, given = ds.X_train, ds.y_train, ds.name, dict(ds.meta), len(ds.X_test) > 0
            t = dict(X_test=ds.X_test, y_test=ds.y_test)
        if given:
            Xt, yt = t["X_test"], t["y_test"]
        else:
            check_folds(y, 2, 1, name)
            dev_i, test_i = train_test_split(np.arange(len(y)), test_size=cv.test_fraction, stratify=y,
                                             random_state=_rs(seed, 37))
            X, y, Xt, yt = X[dev_i], y[dev_i], X[test_i], y[test_i]
        dev = {0: (X, y)}
    for r, (_, yd) in dev.items():
        check_folds(yd, cv.folds, cv.inner_folds, name)
    plan = Plan(name, dev, Xt, yt, cv.folds, cv.inner_folds, seed, meta)
    check_plan(plan, cv.repeats)
    _PLANS[key] = plan
    return plan


# ----------------------------------------------------------------------------- leak checks

def check_disjoint(fit: np.ndarray, scored: np.ndarray, where: str) -> None:
    both = np.intersect1d(fit, scored)
    if len(both):
        raise LeakError(f"leak: {len(both)} row(s) of {where} are both fitted on and scored (e.g. development row "
                        f"{int(both[0])}); the folds must be disjoint")


def check_label_copy(X_fit, y_fit, X_scored, y_scored, where: str) -> None:
    """A feature equal to the label on the scored rows but not on the fitted rows (it cannot
    have been learned: it was filled in from the answers), or equal to it everywhere (the
    label is among the features)."""
    if len(y_scored) < 2 or len(X_scored) == 0:
        return
    Xs = np.asarray(X_scored, dtype=np.float64)
    hit = np.flatnonzero((Xs == np.asarray(y_scored, dtype=np.float64)[:, None]).all(0))
    if not len(hit):
        return
    j = int(hit[0])
    on_fit = bool(np.all(np.asarray(X_fit, dtype=np.float64)[:, j] == y_fit))
    raise LeakError(f"leak: feature {j} equals the label on all {len(y_scored)} scored rows of {where}"
                    + (" and on every fitted row: the label is among the features" if on_fit else
                       " but not on the fitted rows: it was filled in from the answers")
                    + "; remove that column from the data")


def check_fitted_on(transform, X_fit: np.ndarray, where: str) -> None:
    """A transform learned from the data (PCA) must have seen the fitted rows and nothing else:
    its row count and its mean are those of the fitted rows."""
    n = getattr(transform, "n_samples_", None)
    mean = getattr(transform, "mean_", None)
    ok = n == len(X_fit) and mean is not None and np.allclose(mean, np.asarray(X_fit, np.float64).mean(0),
                                                                 rtol=1e-6, atol=1e-8)
    if not ok:
        raise LeakError(f"leak: the {type(transform).__name__} of {where} was fitted on {n} rows, not on its "
                        f"{len(X_fit)} training rows only (held-out rows shaped the features); fit it inside each "
                        f"training fold")


def check_plan(plan: Plan, repeats: int) -> None:
    """Every outer fold of every repeat: disjoint, covering, no label copied into a feature;
    the test rows against the development rows."""
    for r in range(repeats):
        X, y = plan.rows(r)
        seen = np.zeros(len(y), dtype=int)
        for f, (tr, va) in enumerate(plan.outer(r)):
            check_disjoint(tr, va, f"repeat {r} fold {f}")
            check_label_copy(X[tr], y[tr], X[va], y[va], f"repeat {r} fold {f}")
            seen[va] += 1
        if not np.all(seen == 1):
            raise LeakError(f"repeat {r}: some development rows are validated {seen.max()} times, some "
                            f"{seen.min()}; each must be validated once")
        check_label_copy(X, y, plan.X_test, plan.y_test, "the test set")


# ----------------------------------------------------------------------------- a trial's split

def fit_pca(X_fit: np.ndarray, k: int):
    """PCA with whitened scores, fitted on the training rows it is given (only those)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=k, whiten=True, svd_solver="full").fit(np.asarray(X_fit, np.float64))


_PCAS: dict = {}


def _pca_scores(X_fit: np.ndarray, k: int, key, where: str):
    """Whitened scores of the first ``k`` components. One full fit per set of fitted rows
    serves every k (the first k components of the full fit are PCA(k)'s), checked to have
    seen exactly the fitted rows."""
    if key not in _PCAS:
        if len(_PCAS) > 64:
            _PCAS.clear()
        pca = fit_pca(X_fit, min(X_fit.shape))
        check_fitted_on(pca, X_fit, where)
        _PCAS[key] = pca
    pca = _PCAS[key]
    comp, scale = pca.components_[:k], np.sqrt(pca.explained_variance_[:k])

    def transform(X):
        X = np.asarray(X, np.float64)
        return (X - pca.mean_) @ comp.T / scale if len(X) else np.zeros((0, k))

    return transform


_SPLITS: dict[str, tuple] = {}


def cv_split(spec, data_dir: str | None = None) -> tuple[Dataset, Split]:
    """The engine's split of a cross-validated trial (module docstring): fitted rows, scored
    rows, early-stopping rows; with ``cv.pca`` the inputs are whitened PCA scores fitted on the
    fitted rows only (and checked to be)."""
    cv = spec.cv
    key = repr((spec.data.model_dump(), cv.model_dump(exclude={"select", "values", "estimator", "C", "ensemble",
                                                                "patience", "inner_seeds"}), data_dir))
    if key not in _SPLITS:
        _SPLITS.clear() if len(_SPLITS) > 64 else None
        _SPLITS[key] = _build_split(spec, data_dir)
    return _SPLITS[key]


def _build_split(spec, data_dir):
    cv = spec.cv
    plan = make_plan(spec.data, cv, data_dir)
    r, f, i = cv.repeat or 0, cv.fold, cv.inner
    where = ("the final fit" if f == -1 else f"repeat {r} fold {f}" + (f" inner fold {i}" if i is not None else ""))
    X, y = plan.rows(r)
    fit, scored = plan.indices(r, f, i)
    if scored is None:
        Xs, ys = plan.X_test, plan.y_test
    else:
        check_disjoint(fit, scored, where)
        Xs, ys = X[scored], y[scored]
    Xf, yf = X[fit], y[fit]
    check_label_copy(Xf, yf, Xs, ys, where)
    Xm, ym = Xf[:0], yf[:0]
    if cv.early_stopping:   # the monitor rows come out of the training rows
        a, b = train_test_split(np.arange(len(yf)), test_size=cv.es_fraction, stratify=yf,
                                random_state=_rs(plan.seed, 47, r, f + 1, 0 if i is None else i + 1))
        Xf, yf, Xm, ym = Xf[a], yf[a], Xf[b], yf[b]
    if cv.pca:
        k = min(int(cv.pca), len(yf), Xf.shape[1])
        key = repr((spec.data.model_dump(), cv.folds, cv.repeats, cv.inner_folds, cv.test_fraction, cv.early_stopping,
                    cv.es_fraction, r, f, i, data_dir))
        tf = _pca_scores(Xf, k, key, where)
        Xf, Xs, Xm = tf(Xf), tf(Xs), tf(Xm)
    ds = Dataset(plan.name, Xf, yf, Xs, ys, "classification", 2, dict(plan.meta))
    return ds, Split(plan.name, "classification", int(max(yf.max(), ys.max() if len(ys) else 0)) + 1,
                     Xf, yf, Xs, ys, Xm, ym)
