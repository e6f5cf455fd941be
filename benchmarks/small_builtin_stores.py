"""Every built-in study, shrunk to seconds (tests/builtin_stores.SHRINK keeps its levels and
probes), run into one store with the code of the checkout it is run from. With
benchmarks/compare_stores.py this checks that a refactor changed no number:

    git stash; python benchmarks/small_builtin_stores.py /tmp/before.db /tmp/fm; git stash pop
    python benchmarks/small_builtin_stores.py /tmp/after.db /tmp/fm
    python benchmarks/compare_stores.py /tmp/before.db /tmp/after.db

Fashion-MNIST studies run on synthetic IDX files written to FMNIST_DIR. With a third argument
N, N processes share each study's units from its start (``study run --workers N``; helpers start
at once, not after 5 s), to check that they store the same numbers as one.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from builtin_stores import all_builtin_stores  # noqa: E402
from conftest import write_fashion_like  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python benchmarks/small_builtin_stores.py DB FMNIST_DIR [WORKERS]")
    db, fm = Path(sys.argv[1]), Path(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    if workers > 1:
        import scalelab._workers

        scalelab._workers.START_AFTER_S = 0.0
    write_fashion_like(fm)
    print(all_builtin_stores(db, fm, workers))
