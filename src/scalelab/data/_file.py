"""A user's own table: ``.npz`` with ``X`` and ``y`` (optionally ``X_test``, ``y_test``) or
a CSV with a named target column; every problem is one line naming the file and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._dataset import DataError, Dataset, _as_target, _check_finite
from ._sklearn import _split


def read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a user's ``.npz``: X and y, and X_test and y_test when both are there;
    one actionable line when one is missing, unpaired, a scalar or empty."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("X", "y") if k not in z.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; an .npz needs X (n_samples, "
                            f"n_features) and y (n_samples,); it has {', '.join(z.files) or 'nothing'}")
        if ("X_test" in z.files) != ("y_test" in z.files):
            has, lacks = ("X_test", "y_test") if "X_test" in z.files else ("y_test", "X_test")
            raise DataError(f"{path}: has {has} but no {lacks}; give both test arrays or neither")
        arrays = {k: np.asarray(z[k]) for k in ("X", "y", "X_test", "y_test") if k in z.files}
    for k, a in arrays.items():
        if a.ndim == 0 or len(a) == 0:
            raise DataError(f"{path}: array {k} is {'a scalar' if a.ndim == 0 else 'empty'}; it needs one "
                            f"row per sample")
    return arrays


def load_user(path: str | os.PathLike, target: str | None = None, task: str | None = None,
              test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """User data: ``.npz`` with arrays ``X`` and ``y`` (optionally ``X_test``, ``y_test``),
    or a CSV file with a header row and a named target column."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist; check data.path")
    if path.suffix == ".npz":
        arrays = read_npz_arrays(path)
        X, y = arrays["X"], arrays["y"]
        Xte, yte = arrays.get("X_test"), arrays.get("y_test")
    elif path.suffix.lower() == ".csv":
        if not target:
            raise DataError(f"{path}: a CSV needs the target column's name: set data.target")
        import csv

        try:   # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#x} at offset {e.start}; Latin-1?); "
                            f"save the file as UTF-8") from None
        if not rows:
            raise DataError(f"{path}: the CSV file is empty")
        header, body = rows[0], rows[1:]
        if target not in header:
            raise DataError(f"{path}: no column named {target!r}; columns are {', '.join(header)}")
        try:
            table = np.array([[float(v) if v.strip() else np.nan for v in r] for r in body], dtype=np.float64)
        except ValueError as e:
            raise DataError(f"{path}: non-numeric value ({e}); encode categorical columns as numbers first") from None
        if table.ndim != 2 or table.shape[1] != len(header):
            raise DataError(f"{path}: rows have different numbers of columns than the header ({len(header)})")
        j = header.index(target)
        X, y = np.delete(table, j, axis=1), table[:, j]
        Xte = yte = None
    else:
        raise DataError(f"{path}: unsupported data file type {path.suffix!r}; use .npz (X, y) or .csv")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim > 2:
        X = X.reshape(len(X), -1)
    if len(X) != len(y):
        raise DataError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    _check_finite(X, y, str(path))
    y, task, n_classes = _as_target(y, task, str(path))
    if Xte is None:
        Xtr, Xte, ytr, yte = _split(X, y, test_fraction, split_seed, task == "classification", str(path))
    else:
        Xte = Xte.reshape(len(Xte), -1)
        if Xte.shape[1] != X.shape[1]:
            raise DataError(f"{path}: X_test has {Xte.shape[1]} columns but X has {X.shape[1]}; both need the "
                            f"same features")
        if len(Xte) != len(yte):
            raise DataError(f"{path}: X_test has {len(Xte)} rows but y_test has {len(yte)}")
        _check_finite(Xte, yte, str(path))
        yte, _, nc2 = _as_target(yte, task, str(path))
        n_classes = max(n_classes, nc2)
        Xtr, ytr = X, y
    if X.dtype != np.uint8:
        Xtr, Xte = Xtr.astype(np.float64), Xte.astype(np.float64)
    return Dataset(path.stem, Xtr, ytr, Xte, yte, task, n_classes, {"path": str(path)})


def load(data, data_dir, trajectory) -> Dataset:
    if data.vocab:   # token ids
        from ._text import load_tokens

        return load_tokens(data.path or "", data.vocab, data.test_fraction, data.split_seed)
    if not data.path:
        raise DataError("data.dataset = 'file' needs data.path (an .npz with X, y or a .csv)")
    return load_user(data.path, data.target, data.task, data.test_fraction, data.split_seed)
