"""Datasets: Fashion-MNIST from IDX files, scikit-learn's bundled sets, user files.

Every loader returns a :class:`Dataset` whose arrays stay in their storage dtype
(uint8 for images): scaling happens inside training, per model.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file or data set that cannot be used; the message says how to fix it."""


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


# ----------------------------------------------------------------------------- IDX

FASHION_FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "t10k-images": "t10k-images-idx3-ubyte",
    "t10k-labels": "t10k-labels-idx1-ubyte",
}
# sha256 of the *decompressed* official files.
FASHION_SHA256 = {
    "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
HOW_TO_GET = (
    "install it with `sudo apt-get install dataset-fashion-mnist`, or run "
    "`scalelab data fetch fashion-mnist` when online, or pass --data-dir DIR / set "
    "SCALELAB_DATA to a folder holding the four IDX files"
)

# IDX element types (third byte of the magic number) we accept.
_IDX_DTYPES = {0x08: np.uint8}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{path}: cannot be read ({e}); the file is truncated or corrupted, "
                        f"delete it and get it again ({HOW_TO_GET})") from None


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes, checking the magic number, the dimensions and the size."""
    if len(raw) < 4:
        raise DataError(f"{name}: {len(raw)} bytes is too short for an IDX header; the file is truncated")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: wrong magic number {raw[:4].hex()} (expected 0000 08 0N, an unsigned-byte "
                        f"IDX file); this is not an IDX file")
    ndim = raw[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{name}: IDX header says {ndim} dimensions; expected 1 to 4")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated inside the IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{name}: {what}: header dims {dims} need {expected} bytes, the file has {len(raw)}")
    # copy: a writable array that owns its memory (torch refuses read-only buffers)
    return np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=header).reshape(dims).copy()


def _find_file(folder: Path, stem: str) -> Path | None:
    for cand in (folder / (stem + ".gz"), folder / stem):
        if cand.exists():
            return cand
    return None


def fashion_mnist_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for Fashion-MNIST, in order."""
    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir))
    elif os.environ.get("SCALELAB_DATA"):
        dirs.append(Path(os.environ["SCALELAB_DATA"]))
    dirs.append(Path(DEBIAN_DIR))
    home = Path.home()
    dirs.append(home / ".keras" / "datasets" / "fashion-mnist")
    dirs.append(home / ".scalelab" / "data" / "fashion-mnist")
    dirs.append(Path("data") / "FashionMNIST" / "raw")  # torchvision's layout
    dirs.append(home / "data" / "FashionMNIST" / "raw")
    return dirs


def locate_fashion_mnist(data_dir: str | os.PathLike | None = None) -> Path:
    """First folder that holds all four Fashion-MNIST files (plain or .gz)."""
    explicit = data_dir or os.environ.get("SCALELAB_DATA")
    if explicit:
        # A folder the user named is the only place looked at: silently training on
        # other files than the ones asked for would be worse than an error.
        for folder in (Path(explicit), Path(explicit) / "fashion-mnist"):
            if all(_find_file(folder, s) for s in FASHION_FILES.values()):
                return folder
        how = "--data-dir" if data_dir else "SCALELAB_DATA"
        raise DataError(f"Fashion-MNIST not found in {explicit} (from {how}; need "
                        f"{', '.join(FASHION_FILES.values())}, plain or .gz); {HOW_TO_GET}")
    searched = fashion_mnist_dirs()
    for folder in searched:
        if all(_find_file(folder, s) for s in FASHION_FILES.values()):
            return folder
    raise DataError(f"Fashion-MNIST not found (searched {', '.join(map(str, searched))}); {HOW_TO_GET}")


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """Load Fashion-MNIST as uint8 arrays of shape (n, 784) with int64 labels.

    With ``verify`` the sha256 of each decompressed file must equal the official one,
    so a truncated or corrupted file is an error naming it, never a partial load.
    """
    from . import _datacache

    folder = locate_fashion_mnist(data_dir)
    files = {key: _find_file(folder, stem) for key, stem in FASHION_FILES.items()}
    version = _datacache.version_key("fashion-mnist", list(files.values()))
    arrays = _datacache.load(version)
    if arrays is None or set(arrays) != set(files):   # not cached yet (or another layout): read and verify
        arrays = _read_fashion_mnist(files, verify, version, _datacache.store)
    return _fashion_dataset(folder, arrays)


def _read_fashion_mnist(files: dict, verify: bool, version, keep) -> dict:
    """The four files parsed (and verified): kept by ``keep(version, arrays)`` once verified."""
    arrays = {}
    for key, path in files.items():
        raw = _read_bytes(path)
        arr = parse_idx(raw, str(path))  # structure first: it gives the clearest message
        if verify:
            digest = hashlib.sha256(raw).hexdigest()
            if digest != FASHION_SHA256[key]:
                raise DataError(f"{path}: sha256 {digest[:12]}… is not the official {FASHION_SHA256[key][:12]}…; "
                                f"the file is corrupted or not Fashion-MNIST: delete it and get it again "
                                f"({HOW_TO_GET})")
        arrays[key] = arr
    if verify:
        keep(version, arrays)
    return arrays


def _fashion_dataset(folder: Path, arrays: dict) -> Dataset:
    for split in ("train", "t10k"):
        n_img, n_lab = len(arrays[f"{split}-images"]), len(arrays[f"{split}-labels"])
        if n_img != n_lab:
            raise DataError(f"{folder}: {split} has {n_img} images but {n_lab} labels")
    Xtr = arrays["train-images"].reshape(len(arrays["train-images"]), -1)
    Xte = arrays["t10k-images"].reshape(len(arrays["t10k-images"]), -1)
    ytr = arrays["train-labels"].astype(np.int64)
    yte = arrays["t10k-labels"].astype(np.int64)
    if ytr.size and ytr.max() > 9:
        raise DataError(f"{folder}: labels above 9 in train-labels; not Fashion-MNIST")
    return Dataset("fashion-mnist", Xtr, ytr, Xte, yte, "classification", 10, {"dir": str(folder)})


def write_idx(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (``.gz`` when the name ends so); used by tests and tools."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def fetch_fashion_mnist(dest: str | os.PathLike | None = None, base_url: str = FASHION_URL,
                        timeout: float = 60.0) -> Path:
    """Download the four official files into ``dest`` and verify their sha256.

    A file is written under a temporary name and renamed only once verified, so an
    interrupted or corrupted download never leaves a file that looks complete.
    """
    dest = Path(dest) if dest else Path.home() / ".scalelab" / "data" / "fashion-mnist"
    dest.mkdir(parents=True, exist_ok=True)
    for key, stem in FASHION_FILES.items():
        target = dest / (stem + ".gz")
        if target.exists():
            try:
                if hashlib.sha256(_read_bytes(target)).hexdigest() == FASHION_SHA256[key]:
                    continue
            except DataError:
                pass
        url = base_url.rstrip("/") + "/" + stem + ".gz"
        tmp = dest / (stem + ".part.gz")  # .gz last, so it is read decompressed
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
        except (urllib.error.URLError, OSError) as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"download of {url} failed ({e}); check the network or "
                            f"install the Debian package dataset-fashion-mnist") from None
        raw = _read_bytes(tmp)
        digest = hashlib.sha256(raw).hexdigest()
        if digest != FASHION_SHA256[key]:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{url}: downloaded file has sha256 {digest[:12]}…, not the official "
                            f"{FASHION_SHA256[key][:12]}…; nothing was saved, try again later")
        parse_idx(raw, url)
        tmp.replace(target)
    return dest


# ----------------------------------------------------------------------------- other sources

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
