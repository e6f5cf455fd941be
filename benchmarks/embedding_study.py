"""The built-in ``embedding-size`` study end to end, its 2,000,000-word arm included: runs
``scalelab study run embedding-size`` in a fresh store in a child process and records wall
and CPU time, the machine's load average around it, the child's peak resident memory, the
training-only step time per model of every level and explain's findings (the
vocabulary-step-ratio answer to "200k → 2M doubled the epoch time", the dense-update
finding).

    python benchmarks/embedding_study.py [--out benchmarks/results/embedding_study_cpu_2core.json] [--set K=V ...]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.db"
        cmd = [sys.executable, "-m", "scalelab", "study", "run", "embedding-size", "--db", str(db), "--quiet",
               *[x for s in args.set for x in ("--set", s)]]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, env=env).returncode
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        from scalelab._explain import explain_views, study_views
        from scalelab._explain._embedding_update import step_seconds
        from scalelab._store import Store

        with Store(db, readonly=True) as store:
            views = study_views(store, "embedding-size")
            levels = [dict(level=v.level, seeds=len(v.train_s), step_ms_per_model=1e3 * step_seconds(v),
                           test_acc_final=[e[-1]["test_acc"] for e in v.epochs_by_seed]) for v in views]
            findings = [f.as_dict() for f in explain_views(views)
                        if f.id in ("vocabulary-step-ratio", "dense-update-over-unused-rows")]
    result = dict(study="embedding-size", overrides=args.set, returncode=rc, wall_s=round(wall, 1),
                  cpu_user_s=round(ru.ru_utime, 1), cpu_sys_s=round(ru.ru_stime, 1),
                  peak_rss_mb=round(ru.ru_maxrss / 1024, 1), loadavg_before=load_before, loadavg_after=load_after,
                  cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                  levels=levels, findings=findings)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
