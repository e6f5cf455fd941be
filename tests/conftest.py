import os
import sys
from pathlib import Path

import numpy as np
import pytest

from scalelab.data._fashion_mnist import DEBIAN_DIR, write_idx

sys.path.insert(0, str(Path(__file__).parent))


def synthetic_images(n: int, seed: int):
    """Learnable 28x28 uint8 images: class c lights a 6x6 patch at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    X = rng.integers(0, 60, size=(n, 28, 28)).astype(np.int64)
    for i, c in enumerate(y):
        r, col = 2 + (c // 5) * 12, 2 + (c % 5) * 5
        X[i, r: r + 6, col: col + 5] += 150 + rng.integers(0, 40)
    return np.clip(X, 0, 255).astype(np.uint8), y.astype(np.uint8)


def write_fashion_like(folder: Path, n_train=600, n_test=200, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    Xtr, ytr = synthetic_images(n_train, 1)
    Xte, yte = synthetic_images(n_test, 2)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", Xtr)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", ytr)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", Xte)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", yte)
    return folder


@pytest.fixture
def fake_fmnist(tmp_path):
    return write_fashion_like(tmp_path / "fmnist")


def real_fmnist_available() -> bool:
    return all((Path(DEBIAN_DIR) / f"{s}.gz").exists() for s in
               ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


requires_real = pytest.mark.skipif(not real_fmnist_available() and not os.environ.get("CI"),
                                   reason="Debian package dataset-fashion-mnist not installed (make test installs it)")


def small_spec(data_dir, **over):
    """A quick study on the synthetic IDX data (sha256 check off: the files are not the official ones)."""
    d = {
        "name": "tiny", "profile": "keras", "seeds": 2,
        "data": {"dataset": "fashion-mnist", "dir": str(data_dir), "verify": False, "validation": 100},
        "input": {"transform": "scale", "scale": "1/255"},
        "model": {"hidden": [16]},
        "train": {"batch_size": 32, "epochs": 2},
    }
    for k, v in over.items():
        sec, _, key = k.partition("__")
        if key:
            d.setdefault(sec, {})[key] = v
        else:
            d[sec] = v
    return d
