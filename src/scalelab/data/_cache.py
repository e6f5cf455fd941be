"""Decompressed, verified data sets cached on disk, once per file version.

Loading Fashion-MNIST means decompressing four gzip files, hashing their 55 MB and parsing
them (~0.4 s of every run, on a 2-core CPU). The first load that verified the files keeps
the parsed arrays in one uncompressed ``.npz`` under the cache folder (``SCALELAB_CACHE``,
else ``$XDG_CACHE_HOME/scalelab``, else ``~/.cache/scalelab``), named by the source files'
version: their resolved path, size and modification time. A later load of the same file
versions reads the arrays back (~30 ms) without decompressing or hashing; a replaced or
edited file has another version, so it is read and verified again. Only verified arrays are
stored, so an entry serves loads with and without verification. The cache is an
optimisation: a folder that cannot be written, or an entry that cannot be read, falls back
to reading the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = 1
# Files smaller than this (compressed) are read directly: caching saves nothing measurable
# and would leave an entry behind for every small test data set.
MIN_BYTES = 1 << 20


def cache_dir() -> Path:
    if os.environ.get("SCALELAB_CACHE"):
        return Path(os.environ["SCALELAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scalelab"


def version_key(name: str, files: list[Path]) -> str | None:
    """What identifies these files' current contents for the cache (None: not worth caching)."""
    stats = [(str(p.resolve()), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()]]
    if sum(s for _, s, _ in stats) < MIN_BYTES:
        return None
    return f"{name}-" + hashlib.sha256(json.dumps([FORMAT, stats]).encode()).hexdigest()[:24]


def load(key: str | None) -> dict[str, np.ndarray] | None:
    """The arrays cached under ``key``, or None (no entry, or one that cannot be read)."""
    if key is None:
        return None
    path = cache_dir() / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def store(key: str | None, arrays: dict[str, np.ndarray]) -> None:
    """Keep ``arrays`` (already verified) under ``key``; written under a temporary name and
    renamed, so a reader never sees half an entry. Errors are ignored: it is only a cache."""
    if key is None:
        return
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, folder / f"{key}.npz")
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
