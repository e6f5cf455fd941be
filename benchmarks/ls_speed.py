"""How long does ``scalelab ls`` take on a store of many studies? Builds a store of N studies
(iris, 3 seeds × 4 learning rates each; studies of the same learning rate share their stored
trials, as a store reuses what it already computed), then times N_RUNS fresh processes of
``python -m scalelab ls --db STORE`` (the whole command as a user waits for it: interpreter,
imports, reading, the table), interleaved with ``python -c pass`` (the interpreter's floor).

    python benchmarks/ls_speed.py [--studies 100] [--runs 15] [--json benchmarks/results/ls_speed_cpu_2core.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_startup import wall  # noqa: E402  (a fresh process's wall time)


def build(db: Path, n: int) -> None:
    from scalelab import Store, run_study

    store = Store(db)
    for i in range(n):
        spec = dict(name=f"study-{i:03d}", seeds=3, data=dict(dataset="iris"), loss=dict(name="crossentropy"),
                    model=dict(hidden=[8]), train=dict(epochs=2), optim=dict(name="adam", lr=[1e-3, 3e-3, 1e-2, 3e-2][i % 4]))
        run_study(spec, store, progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=100)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "100"}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "many.db"
        t0 = time.perf_counter()
        build(db, a.studies)
        built = time.perf_counter() - t0
        ls, floor = [], []
        torch_free = "torch" not in subprocess.run(
            [sys.executable, "-c", f"import sys, contextlib, io\nfrom scalelab._cli import main\n"
             f"with contextlib.redirect_stdout(io.StringIO()): main(['ls', '--db', {str(db)!r}])\nprint(list(sys.modules))"],
            env=env, capture_output=True, text=True, check=True).stdout
        for _ in range(a.runs):
            ls.append(wall(["-m", "scalelab", "ls", "--db", str(db)], env))
            floor.append(wall(["-c", "pass"], env))
    out = dict(studies=a.studies, runs=a.runs, ls_median_s=statistics.median(ls), ls_min_s=min(ls), ls_max_s=max(ls),
               python_floor_median_s=statistics.median(floor), imports_torch=not torch_free, build_s=built,
               cpu_count=os.cpu_count(), platform=platform.platform(), python=platform.python_version())
    print(f"scalelab ls on {a.studies} studies: median {out['ls_median_s']:.3f} s (min {out['ls_min_s']:.3f}, "
          f"max {out['ls_max_s']:.3f}) over {a.runs} fresh processes; python -c pass {out['python_floor_median_s']:.3f} s; "
          f"torch imported: {out['imports_torch']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
