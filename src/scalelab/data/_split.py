"""The data side of a trial: its spec's ``data`` section → a data set → train / validation /
test arrays (numpy, storage dtype), with the spec's extra input features computed."""

from __future__ import annotations

from ._dataset import Dataset, DataError, Split
from ._registry import load_dataset
from ._synthetic import add_features


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
        from ._folds import cv_split

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
