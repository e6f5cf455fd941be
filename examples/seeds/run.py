"""Run a seed script as its author wrote it, without the internet: Keras's
``fashion_mnist.load_data()`` reads its cache (``$KERAS_HOME/datasets/fashion-mnist``), which
this fills from scalelab's Fashion-MNIST (Debian's dataset-fashion-mnist, or SCALELAB_DATA).

    python examples/seeds/run.py 000 [--quick] [--db scalelab.db]

``--quick`` (CI): the first 3000 training and 1000 test images. The script runs in the
folder of ``--db`` (its callbacks write ``scalelab.db`` there) with the environment as it
is: KERAS_BACKEND unset means Keras's default, TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def fill_keras_cache(home: Path, quick: bool) -> None:
    from scalelab import load_fashion_mnist
    from scalelab._data import write_idx

    ds = load_fashion_mnist()
    n_train, n_test = (3000, 1000) if quick else (len(ds.y_train), len(ds.y_test))
    folder = home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in (("train-images-idx3-ubyte", ds.X_train[:n_train].reshape(-1, 28, 28)),
                      ("train-labels-idx1-ubyte", ds.y_train[:n_train]),
                      ("t10k-images-idx3-ubyte", ds.X_test[:n_test].reshape(-1, 28, 28)),
                      ("t10k-labels-idx1-ubyte", ds.y_test[:n_test])):
        write_idx(folder / f"{name}.gz", np.asarray(arr, dtype=np.uint8))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seed", help="000, 001, 002 or 003")
    ap.add_argument("--quick", action="store_true", help="3000 training and 1000 test images (CI)")
    ap.add_argument("--db", default="scalelab.db", help="where the callbacks store the runs")
    a = ap.parse_args(argv)
    script = next(HERE.glob(f"{a.seed}_*.py"), None)
    if script is None:
        sys.exit(f"no seed script {a.seed!r} in {HERE}: use one of "
                 f"{', '.join(sorted(p.name[:3] for p in HERE.glob('[0-9]*.py')))}")
    with tempfile.TemporaryDirectory() as home:
        fill_keras_cache(Path(home), a.quick)
        os.environ["KERAS_HOME"] = home
        db = Path(a.db).resolve()
        db.parent.mkdir(parents=True, exist_ok=True)
        os.chdir(db.parent)
        if db.name != "scalelab.db":
            sys.exit("--db: the seed scripts write scalelab.db in the current folder; name a folder's scalelab.db")
        sys.argv = [str(script)]
        runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
