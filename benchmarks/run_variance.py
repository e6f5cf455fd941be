"""How long does the built-in ``run-variance`` study take end to end? Runs
``scalelab study run run-variance`` in a fresh store in a child process (20 seeds × 5 folds ×
every arm, nested selection included) and records its wall time, the CPU time it used, the
machine's load average around it (other processes share the cores: wall time alone says
little on a busy machine), per-arm training wall time from the store, and the study's answer
and table, and the child's peak resident memory (ru_maxrss).

    python benchmarks/run_variance.py [--study run-variance] [--workers N|auto] [--out benchmarks/results/X.json] [--set K=V ...]
    python benchmarks/run_variance.py --file-test-rows 5000 --out …   # the user's case: a 100 × 10,000 .npz
        (generated p≫n rows) whose X_test/y_test hold 5,000 more rows, through data.dataset = "file"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="run-variance")
    ap.add_argument("--out")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--workers", default="auto", help="study run --workers (default auto: one process per core)")
    ap.add_argument("--file-test-rows", type=int, help="run on a 100 × 10,000 .npz with this many X_test rows")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.db"
        if args.file_test_rows:
            import numpy as np

            from scalelab.data._pn import make_pn_classification

            X, y = make_pn_classification(n=100 + args.file_test_rows, seed=3)[:2]
            path = Path(tmp) / "genomic.npz"
            np.savez(path, X=X[:100].astype(np.float32), y=y[:100], X_test=X[100:].astype(np.float32),
                     y_test=y[100:])
            args.set += ["data.dataset=file", f"data.path={path}"]
        cmd = [sys.executable, "-m", "scalelab", "study", "run", args.study, "--db", str(db), "--quiet",
               "--workers", args.workers, *[x for s in args.set for x in ("--set", s)]]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, env=env).returncode
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        from scalelab._store import Store
        from scalelab.report._cv import summary_json

        with Store(db, readonly=True) as store:
            summary = summary_json(store, args.study)
            per_arm = defaultdict(float)
            for t in store.trials(store.latest_study(args.study)["id"]):
                per_arm[t["level"]["arm"]] += t["wall_s"] or 0.0
    result = dict(study=args.study, overrides=args.set, workers=args.workers, returncode=rc, wall_s=round(wall, 1),
                  cpu_user_s=round(ru.ru_utime, 1), cpu_sys_s=round(ru.ru_stime, 1),
                  cpu_share_of_2_cores=round((ru.ru_utime + ru.ru_stime) / wall / 2, 2),
                  peak_rss_mb=round(ru.ru_maxrss / 1024, 1),   # Linux: KiB, of the largest child
                  loadavg_before=load_before, loadavg_after=load_after, cpus=os.cpu_count(),
                  platform=platform.platform(), python=platform.python_version(),
                  train_wall_s_by_arm={k: round(v, 1) for k, v in per_arm.items()},
                  answer=summary["answer"], arms=summary["arms"], findings=summary["findings"],
                  n_trials=len(summary["trials"]))
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
