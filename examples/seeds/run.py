"""Run a seed script as its author wrote it, without the internet: Keras's
``fashion_mnist.load_data()`` reads its cache (``$KERAS_HOME/datasets/fashion-mnist``), which
this fills from scalelab's Fashion-MNIST (Debian's dataset-fashion-mnist, or SCALELAB_DATA).

    python examples/seeds/run.py 000 [--quick] [--db DIR/scalelab.db] [--set NAME=VALUE] [--drop TEXT]

``--quick`` (CI): the first 3000 training and 1000 test images (``--train``, ``--test``: N). ``--set`` and ``--drop`` do
what the authors did by hand between runs: give an assignment ``NAME = ...`` another value,
leave out the lines that contain TEXT. The script runs in the folder of ``--db`` (its
callbacks write ``scalelab.db`` there) with the environment as it is: KERAS_BACKEND unset
means Keras's default, TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def fill_keras_cache(home: Path, n_train: int | None, n_test: int | None) -> None:
    from scalelab import load_fashion_mnist
    from scalelab.data._fashion_mnist import write_idx

    ds = load_fashion_mnist()
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
    ap.add_argument("--train", type=int, help="the first N training images (default: all; --quick: 3000)")
    ap.add_argument("--test", type=int, help="the first N test images (default: all; --quick: 1000)")
    ap.add_argument("--db", default="scalelab.db", help="where the callbacks store the runs")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="another value for NAME = ...")
    ap.add_argument("--drop", action="append", default=[], metavar="TEXT", help="leave out the lines containing TEXT")
    ap.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                    help="NEW for the text OLD wherever the script has it (e.g. its own split at 55000, on cut-down data)")
    a = ap.parse_args(argv)
    script = next(HERE.glob(f"{a.seed}_*.py"), None)
    if script is None:
        sys.exit(f"no seed script {a.seed!r} in {HERE}: use one of "
                 f"{', '.join(sorted(p.name[:3] for p in HERE.glob('[0-9]*.py')))}")
    with tempfile.TemporaryDirectory() as home:
        fill_keras_cache(Path(home), a.train or (3000 if a.quick else None), a.test or (1000 if a.quick else None))
        os.environ["KERAS_HOME"] = home
        db = Path(a.db).resolve()
        db.parent.mkdir(parents=True, exist_ok=True)
        os.chdir(db.parent)
        if db.name != "scalelab.db":
            sys.exit("--db: the seed scripts write scalelab.db in the current folder; name a folder's scalelab.db")
        sys.argv = [str(script)]
        source = edited(script.read_text(), a.set, a.drop, a.replace)
        exec(compile(source, str(script), "exec"), {"__name__": "__main__", "__file__": str(script)})


def edited(source: str, sets: list[str], drops: list[str], replaces: list[str] = ()) -> str:
    for item in replaces:
        old, _, new = item.partition("=")
        if not old or old not in source:
            sys.exit(f"--replace {item}: the script has no {old!r}")
        source = source.replace(old, new)
    lines = source.splitlines()
    for item in sets:
        name, _, value = item.partition("=")
        pattern = re.compile(rf"^(\s*){re.escape(name.strip())}\s*=\s*[^=].*$")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if not hits:
            sys.exit(f"--set {item}: the script assigns no {name.strip()!r}")
        for i in hits:
            lines[i] = pattern.sub(lambda m: f"{m.group(1)}{name.strip()} = {value.strip()}", lines[i])
    for text in drops:
        kept = [line for line in lines if text not in line]
        if len(kept) == len(lines):
            sys.exit(f"--drop {text!r}: no line of the script contains it")
        lines = kept
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
