"""The user's own table for a cross-validated study: ``.npz`` with arrays ``X`` and ``y``
(optionally ``X_test``, ``y_test``) or a CSV with a header row and a named label column.
Every problem is one line that names the file, the place and the fix."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ._dataset import DataError
from ._file import read_npz_arrays


def _labels(y: np.ndarray, source: str) -> tuple[np.ndarray, list]:
    """Labels as 0..K-1 (sorted distinct values: numbers or strings), and those values."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one column, got shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise DataError(f"{source}: label of row {i} is {y[i]}; every row needs a label (remove such rows)")
    values, codes = np.unique(y, return_inverse=True)
    return codes.astype(np.int64), values.tolist()


def _check_X(X: np.ndarray, source: str, columns: list[str] | None = None, first_line: int | None = None) -> None:
    if X.dtype.kind not in "iufb":
        raise DataError(f"{source}: X has dtype {X.dtype}; it must be numeric (encode categories as numbers)")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        i, j = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
        where = (f"line {first_line + i}, column {columns[j]!r}" if columns else f"row {i}, column {j}")
        raise DataError(f"{source}: {where} is {'NaN (empty)' if np.isnan(X[i, j]) else X[i, j]}; remove or impute "
                        f"such cells before the study")


def read_table(path: str | Path, target: str | None = None) -> dict:
    """X, y (labels 0..K-1), optional X_test, y_test, and the original label values."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist; check data.path")
    src = str(path)
    if path.suffix == ".npz":
        arr = read_npz_arrays(path)
        X = arr["X"].reshape(len(arr["X"]), -1)
        if X.ndim != 2 or len(X) != len(arr["y"]):
            raise DataError(f"{src}: X has shape {arr['X'].shape} and y {arr['y'].shape}; they need one row per sample")
        _check_X(X, src)
        out = dict(X=X, source=src)
        ys = [arr["y"]] + ([arr["y_test"]] if "y_test" in arr else [])
        codes, values = _labels(np.concatenate(ys), src)
        out["y"], out["labels"] = codes[: len(X)], values
        if "X_test" in arr:
            Xt = arr["X_test"].reshape(len(arr["X_test"]), -1)
            if Xt.shape[1] != X.shape[1] or len(Xt) != len(arr["y_test"]):
                raise DataError(f"{src}: X_test has shape {arr['X_test'].shape} and y_test {arr['y_test'].shape}; "
                                f"they need X's {X.shape[1]} columns and one label per row")
            _check_X(Xt, src + " (X_test)")
            out["X_test"], out["y_test"] = Xt, codes[len(X):]
        return out
    if path.suffix.lower() != ".csv":
        raise DataError(f"{src}: unsupported data file type {path.suffix!r}; use .npz (X, y) or .csv")
    if not target:
        raise DataError(f"{src}: a CSV needs its label column's name: set data.target")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise DataError(f"{src}: not UTF-8 text (offset {e.start}); save the file as UTF-8") from None
    if not rows:
        raise DataError(f"{src}: the CSV file is empty")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if target not in header:
        raise DataError(f"{src}: no label column named {target!r}; columns are {', '.join(header)}; set data.target "
                        f"to one of them")
    j = header.index(target)
    feats = [h for k, h in enumerate(header) if k != j]
    X = np.empty((len(body), len(feats)))
    y = []
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DataError(f"{src}: line {i + 2} has {len(r)} cells, the header {len(header)}; every row needs one "
                            f"cell per column")
        y.append(r[j].strip())
        for k, v in enumerate(c for m, c in enumerate(r) if m != j):
            v = v.strip()
            try:
                X[i, k] = float(v) if v else np.nan
            except ValueError:
                raise DataError(f"{src}: line {i + 2}, column {feats[k]!r}: {v!r} is not a number; encode "
                                f"categorical columns as numbers first") from None
    if not len(body):
        raise DataError(f"{src}: the CSV has a header but no rows")
    _check_X(X, src, feats, first_line=2)
    ya = np.array(y)
    if any(v == "" for v in y):
        raise DataError(f"{src}: line {y.index('') + 2} has no label in column {target!r}; every row needs one")
    try:
        ya = ya.astype(np.float64)
    except ValueError:
        pass   # class names as text: numbered in sorted order
    codes, values = _labels(ya, src)
    return dict(X=X, y=codes, labels=values, source=src, columns=feats)


def check_folds(y: np.ndarray, folds: int, inner_folds: int, source: str) -> None:
    """Stratified k-fold needs two classes and, in every class, at least one row per fold
    (and per inner fold of an outer training set)."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"{source}: every label is {classes[0] if len(classes) else '(none)'}: a single class; a "
                        f"classifier needs rows of at least two classes")
    small = int(counts.argmin())
    if counts[small] < folds:
        raise DataError(f"{source}: class {classes[small]} has {counts[small]} development rows, fewer than cv.folds "
                        f"= {folds}; stratified k-fold needs at least one per fold: lower cv.folds or add rows")
    inner = counts[small] * (folds - 1) // folds
    if inner < inner_folds:
        raise DataError(f"{source}: class {classes[small]} has about {inner} rows in an outer training set, fewer than "
                        f"cv.inner_folds = {inner_folds}; lower cv.inner_folds or cv.folds, or add rows")
