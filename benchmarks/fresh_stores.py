"""Does the same study give the same store in every fresh process, idle or busy? Runs one
study N times, each in a fresh process into its own store, the last K of them beside two
CPU-bound processes (the condition under which torch.compile used to fail over to eager
about half the time: see benchmarks/compile_fallback.py), then compares every store with the
first (benchmarks/compare_stores.py: every epoch metric and probe value, exact) and checks
the path each trial recorded (compiled or eager, vector instruction set).

    python benchmarks/fresh_stores.py [--runs 8] [--busy 4] [--out benchmarks/results/fresh_stores_cpu_2core.json]

The study is the issue's Fashion-MNIST case made short: 784-128-10, Keras profile, pixels /
255, 4 seeds, compiled step, cheap probes, 1 epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

SPEC = """
name = "fresh-stores"
profile = "keras"
seeds = 4
[data]
dataset = "fashion-mnist"
validation = 0
[input]
transform = "scale"
scale = "1/255"
[model]
hidden = [128]
activation = "relu"
[loss]
name = "crossentropy"
[optim]
name = "adam"
lr = 0.001
[train]
batch_size = 32
epochs = 1
compile = true
[probes]
preset = "cheap"
"""

BUSY = "while True: pass"


def _paths(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        envs = [json.loads(e) for (e,) in c.execute("SELECT env FROM trials ORDER BY id")]
    return sorted({f"{e.get('step')} vec_isa={e.get('vec_isa')} cpu={e.get('cpu_capability')}"
                   + (f" compile_error={e['compile_error']}" if e.get("compile_error") else "") for e in envs})


def main() -> int:
    from compare_stores import compare
    from scalelab._store import Store

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--busy", type=int, default=4, help="how many of the runs (the last ones) beside 2 busy processes")
    ap.add_argument("--out")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    runs, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(SPEC)
        for i in range(args.runs):
            busy = i >= args.runs - args.busy
            hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2 if busy else 0)]
            db = Path(tmp) / f"run{i}.db"
            try:
                load0, t0 = os.getloadavg()[0], time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "scalelab", "run", str(spec), "--db", str(db), "--quiet"],
                                   env=env, capture_output=True, text=True)
                wall = time.perf_counter() - t0
            finally:
                for h in hogs:
                    h.kill()
                    h.wait()
            diffs = compare(Store(Path(tmp) / "run0.db", readonly=True), Store(db, readonly=True), "fresh-stores") \
                if r.returncode == 0 else ["run failed"]
            run = dict(run=i, beside_busy_processes=2 if busy else 0, rc=r.returncode, wall_s=round(wall, 1),
                       load_1min_before=round(load0, 2), load_1min_after=round(os.getloadavg()[0], 2),
                       paths=_paths(db) if r.returncode == 0 else [], differences_from_run0=len(diffs),
                       first_difference=diffs[0] if diffs else None,
                       stderr=[ln for ln in r.stderr.splitlines() if ln.startswith("scalelab:")])
            ok &= r.returncode == 0 and not diffs
            runs.append(run)
            print(json.dumps(run), flush=True)
    paths = sorted({p for r in runs for p in r["paths"]})
    summary = dict(study=SPEC.strip(), runs=runs, identical=sum(r["differences_from_run0"] == 0 for r in runs),
                   of=len(runs), paths=paths, command="python benchmarks/fresh_stores.py "
                   f"--runs {args.runs} --busy {args.busy}", machine=f"{os.cpu_count()} CPUs, shared")
    print(f"{summary['identical']} of {len(runs)} stores bit-identical to run 0; paths: {paths}")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if ok and len(paths) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
