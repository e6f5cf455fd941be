"""Figures of issue 15's closing note: kill -9 resumption, processes sharing one store, and
the storage cost of per-epoch checkpoints.

    python benchmarks/store_trust.py [--reps 10] [--out benchmarks/results/store_trust.json]

* kill: ``tests/kill_harness.py`` (SIGKILL at seeded random moments, rerun, compare);
* sharing: 1, 2 and 4 ``tests/store_worker.py`` processes on one store and one study
  (16 trials of a 64-256-256-10 MLP, 6 epochs, one trial per unit, OMP_NUM_THREADS=1 each): wall time and training runs per trial
  counted from the workers' own logs, and the workers' CPU seconds (on a machine with fewer
  free cores than processes, wall time follows CPU time: the processes do not wait on the store);
* big grid: peak Python memory of planning 10,000 trials by streaming vs as a list;
* checkpoints: compressed bytes of one epoch's checkpoint per trial for the 784-128-10 MLP
  (Adam, Fashion-MNIST-shaped inputs), as stored in the ``checkpoints`` table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SHARED = {"name": "shared", "seeds": 4, "profile": "keras", "data": {"dataset": "digits", "validation": 200},
          "model": {"hidden": [256, 256]}, "train": {"batch_size": 16, "epochs": 6},
          "grid": {"optim.lr": [0.0003, 0.001, 0.003, 0.01]}}


def sharing(n_procs: int, tmp: Path) -> dict:
    db, log, spec = tmp / f"p{n_procs}.db", tmp / f"p{n_procs}.log", tmp / "shared.json"
    spec.write_text(json.dumps(SHARED))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(TESTS / "store_worker.py"), str(db), str(spec), str(log), "1"],
                              env=env) for _ in range(n_procs)]
    cpu = 0.0
    for p in procs:   # wait4: each worker's CPU time, to tell CPU contention from waiting on the store
        _, status, usage = os.wait4(p.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        cpu += usage.ru_utime + usage.ru_stime
    wall = time.perf_counter() - t0
    starts = [ln.split() for ln in log.read_text().splitlines() if ln.startswith("start")]
    keys = [k for s in starts for k in s[3].split(",")]
    return dict(processes=n_procs, wall_s=round(wall, 2), cpu_s=round(cpu, 2), load_average=os.getloadavg()[0], trials=len(set(keys)), training_runs=len(keys),
                by_process=sorted(sum(1 for s in starts if s[1] == pid) for pid in {s[1] for s in starts}))


def checkpoint_cost() -> dict:
    import numpy as np

    from scalelab._spec import expand, parse_spec
    from scalelab._store._checkpoint_blob import encode
    from scalelab.engine import train_group

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(2000, 784)).astype(np.uint8)
    y = rng.integers(0, 10, size=2000)
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "fm.npz", X=X, y=y)
        spec = parse_spec({"name": "ck", "seeds": 8, "data": {"dataset": "file", "path": str(Path(d) / "fm.npz")},
                           "model": {"hidden": [128]}, "optim": {"name": "adam"},
                           "train": {"batch_size": 256, "epochs": 2}})
        sizes = []
        train_group(expand(spec), checkpoint=lambda e, s: sizes.append(len(encode(s))))
    n_params = 784 * 128 + 128 + 128 * 10 + 10
    return dict(model="784-128-10 MLP, Adam", trials_per_group=8, bytes_per_trial=sizes[0] // 8,
                raw_float32_bytes_per_trial=n_params * 4 * 3, parameters=n_params)


def big_grid(n_lr: int = 2000, seeds: int = 5) -> dict:
    """Peak Python memory (tracemalloc) of planning a 10,000-trial study by streaming
    (``scan``: what run_study does) against holding its expansion as a list."""
    import tracemalloc

    from scalelab import Store
    from scalelab._runner import scan
    from scalelab._spec import expand, parse_spec

    spec = parse_spec({"name": "big", "seeds": seeds, "data": {"dataset": "iris"},
                       "grid": {"optim.lr": [10 ** -(1 + i / n_lr) for i in range(n_lr)]}})
    out = {"trials": n_lr * seeds}
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "big.db")
        warm = parse_spec({"name": "warm", "seeds": 1, "data": {"dataset": "iris"}})
        scan(store, store.study_id("warm", "w", {}), warm, None)   # imports and data loading, not measured
        sid = store.study_id("big", "h", {})
        for name, fn in (("expand_list", lambda: expand(spec)), ("scan", lambda: scan(store, sid, spec, None))):
            tracemalloc.start()
            t0 = time.perf_counter()
            fn()
            out[f"{name}_s"] = round(time.perf_counter() - t0, 2)
            out[f"{name}_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
        store.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/store_trust.json"))
    ap.add_argument("--only-big-grid", action="store_true", help="just the big-grid figures (merged into --out)")
    a = ap.parse_args()
    if a.only_big_grid:
        prev = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
        prev["big_grid"] = big_grid()
        Path(a.out).write_text(json.dumps(prev, indent=1))
        print(json.dumps(prev["big_grid"], indent=1))
        return
    out = {"machine": f"{os.cpu_count()} CPU cores (shared with other jobs: timings are noisy)",
           "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, str(TESTS / "kill_harness.py"), str(Path(d) / "kill"), str(a.reps), "1"],
                           capture_output=True, text=True, check=True)
        out["kill"] = json.loads(r.stdout)
        out["sharing"] = [sharing(n, Path(d)) for n in (1, 2, 4)]
    out["checkpoint"] = checkpoint_cost()
    out["big_grid"] = big_grid()
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
