"""Every built-in study, shrunk to seconds (tests/builtin_stores.SHRINK keeps its levels and
probes), run into one store with the code of the checkout it is run from. With
benchmarks/compare_stores.py this checks that a refactor changed no number:

    git stash; python benchmarks/small_builtin_stores.py /tmp/before.db /tmp/fm; git stash pop
    python benchmarks/small_builtin_stores.py /tmp/after.db /tmp/fm
    python benchmarks/compare_stores.py /tmp/before.db /tmp/after.db

Fashion-MNIST studies run on synthetic IDX files written to FMNIST_DIR.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from builtin_stores import all_builtin_stores  # noqa: E402
from conftest import write_fashion_like  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/small_builtin_stores.py DB FMNIST_DIR")
    db, fm = Path(sys.argv[1]), Path(sys.argv[2])
    write_fashion_like(fm)
    print(all_builtin_stores(db, fm))
