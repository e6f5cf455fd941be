"""Fashion-MNIST from its IDX files: found in the usual places, verified against the
official sha256 of each decompressed file, cached decompressed, or fetched."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ._dataset import DataError, Dataset

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
    from . import _cache as _datacache

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


def load(data, data_dir, trajectory) -> Dataset:
    return load_fashion_mnist(data.dir or data_dir, verify=data.verify)
