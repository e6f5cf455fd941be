"""The data side of a trial: its spec's ``data`` section → a data set → train / validation /
test arrays (numpy, storage dtype), with the spec's extra input features computed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._data import SKLEARN_SETS, Dataset, DataError, load_fashion_mnist, load_sklearn, load_user
from ._synthetic import SYNTHETIC, add_features
from ._text import load_tokens, make_text


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


_DATA_CACHE: dict[str, Dataset] = {}


def dataset_key(data, data_dir: str | None = None, trajectory=None) -> str:
    """What identifies a loaded data set in the per-process cache (executors seed it remotely)."""
    key = (data.dataset, data.dir or data_dir, data.verify, data.path, data.target, data.task,
           data.test_fraction, data.split_seed, data.n_samples, data.noise)
    if data.vocab or data.dataset == "text":
        key += (data.vocab, data.seq_len, data.text_rule, data.text_lengths)
    if not data.holdout:
        key += ("no-holdout",)
    if trajectory is not None and data.dataset == "trajectories":   # the generator's own options
        key += (repr(sorted(trajectory.model_dump().items())),)
    if data.generator is not None:   # the p≫n generator's parameters
        key += (repr(data.generator),)
    return repr(key)


def load_dataset(data, data_dir: str | None = None, trajectory=None) -> Dataset:
    """The raw data set a resolved ``data`` section names (cached per process); ``trajectory``:
    the spec's ``[trajectory]`` section, for ``data.dataset = "trajectories"``."""
    key = dataset_key(data, data_dir, trajectory)
    if not data.holdout and data.dataset not in SKLEARN_SETS:
        raise DataError(f"data.holdout = false (train and evaluate on all rows) is for the scikit-learn sets "
                        f"({', '.join(SKLEARN_SETS)}), not {data.dataset!r}; remove it")
    if key not in _DATA_CACHE:
        name = data.dataset
        if name in ("pn-synthetic", "fmnist-pair"):   # the p≫n sets of cross-validated studies
            from .evaluation import load_pn_dataset

            ds = load_pn_dataset(data, data_dir)
        elif name == "trajectories":
            from .trajectories import load_trajectory_data

            ds = load_trajectory_data(data, trajectory)
        elif name == "fashion-mnist":
            ds = load_fashion_mnist(data.dir or data_dir, verify=data.verify)
        elif name in SYNTHETIC:
            kw = {"n_train": data.n_samples} if data.n_samples else {}
            if name == "sin-plus-y":
                kw["noise"] = data.noise
            ds = SYNTHETIC[name](seed=data.split_seed, **kw)
        elif name == "text":
            kw = {"n_train": data.n_samples} if data.n_samples else {}
            ds = make_text(seed=data.split_seed, vocab=data.vocab or 20000, steps=data.seq_len, rule=data.text_rule,
                           lengths=data.text_lengths, **kw)
        elif name == "file" and data.vocab:
            ds = load_tokens(data.path or "", data.vocab, data.test_fraction, data.split_seed)
        elif name == "file":
            if not data.path:
                raise DataError("data.dataset = 'file' needs data.path (an .npz with X, y or a .csv)")
            ds = load_user(data.path, data.target, data.task, data.test_fraction, data.split_seed)
        else:
            ds = load_sklearn(name, data.test_fraction, data.split_seed, data.holdout)
        _DATA_CACHE[key] = ds
    return _DATA_CACHE[key]


def split_dataset(ds: Dataset, data) -> Split:
    """Apply subsets and the validation split (taken from the end of training, as Keras does)."""
    Xtr, ytr, Xte, yte = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    if data.train_subset:
        Xtr, ytr = Xtr[: data.train_subset], ytr[: data.train_subset]
    if data.test_subset:
        Xte, yte = Xte[: data.test_subset], yte[: data.test_subset]
    v = data.validation
    n_val = int(round(v * len(Xtr))) if v < 1 else int(v)
    if n_val >= len(Xtr):
        raise DataError(f"data.validation = {v} leaves no training samples out of {len(Xtr)}")
    cut = len(Xtr) - n_val
    return Split(ds.name, ds.task, ds.n_classes, Xtr[:cut], ytr[:cut], Xtr[cut:], ytr[cut:], Xte, yte)


def trial_split(spec, data_dir: str | None = None) -> tuple[Dataset, Split]:
    """A trial's data set and its split, with the spec's extra input columns computed."""
    if spec.cv is not None and spec.cv.fold is not None:   # a fold of a cross-validated study
        from .evaluation import cv_split

        return cv_split(spec, data_dir)
    ds = load_dataset(spec.data, data_dir, getattr(spec, "trajectory", None))
    sp = split_dataset(ds, spec.data)
    if spec.input.features:  # user-defined columns, computed from the raw ones
        for part in ("X_train", "X_val", "X_test"):
            setattr(sp, part, add_features(getattr(sp, part), spec.input.features))
    return ds, sp


def image_shape(ds: Dataset) -> tuple | None:
    """(C, H, W) of image-shaped inputs, else None."""
    return ds.meta.get("image_shape") or ((1, 28, 28) if ds.name == "fashion-mnist" else None)
