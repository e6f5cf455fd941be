"""The built-in ``trajectories`` study from scratch, timed: wall and CPU seconds, the load
of the machine around the run (it may be shared), and the metric table (mean ± std over
seeds per level) with the acceptance checks of issue 19 — a multimodal model within 0.05
of the true branch probabilities on every branch, and its minFDE_20 at least 2× below the
deterministic baseline's FDE.

    python benchmarks/trajectories_study.py [--threads N] [--workers N] [--set KEY=VALUE ...] [--out FILE]

CPU seconds with one thread bound what the study takes on an idle core; the wall time on a
shared machine is longer by the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

import scalelab  # noqa: E402
from scalelab._study import with_overrides  # noqa: E402

METRICS = ("ade", "fde", "min_ade_20", "min_fde_20", "grid_nll", "branch_abs_error")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the study's units (study run --workers)")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--db", default=None, help="store to write (default: a temporary file)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--timed", nargs=3, metavar=("WALL_S", "CPU_USER_S", "LOAD"), default=None,
                    help="summarize the study already in --db, timed elsewhere (no new run)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = with_overrides(scalelab.builtin_spec("trajectories"), a.set)
    db = a.db or os.path.join(tempfile.mkdtemp(), "trajectories.db")
    if a.timed:
        wall, cpu, sys_s, load0, load1 = float(a.timed[0]), float(a.timed[1]), None, a.timed[2], None
    else:
        if os.path.exists(db):
            os.remove(db)
        load0, t0, ru0 = os.getloadavg(), time.time(), resource.getrusage(resource.RUSAGE_SELF)
        scalelab.run_study(spec, db, workers=a.workers)
        wall, ru = time.time() - t0, resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)   # the helper processes' CPU
        cpu, sys_s = ru.ru_utime - ru0.ru_utime + kids.ru_utime, round(ru.ru_stime - ru0.ru_stime + kids.ru_stime, 1)
        load1 = os.getloadavg()
    with scalelab.Store(db) as store:
        records = scalelab.summarize(store, "trajectories")
    table = [dict(level=r["level"], **{m: [r[m]["mean"], r[m]["std"]] for m in METRICS}) for r in records]
    det = [r for r in records if r["level"].get("loss.name") == "trajectory_mse"]
    best_det_fde = min(r["fde"]["mean"] for r in det) if det else None
    passing = [dict(level=r["level"], branch_abs_error=r["branch_abs_error"]["mean"],
                    min_fde_20=r["min_fde_20"]["mean"], ratio_to_det_fde=best_det_fde / r["min_fde_20"]["mean"])
               for r in records if r["level"].get("loss.name") != "trajectory_mse"
               and r["branch_abs_error"]["mean"] is not None and r["branch_abs_error"]["mean"] <= 0.05
               and best_det_fde is not None and r["min_fde_20"]["mean"] * 2 <= best_det_fde]
    out = dict(study="trajectories", overrides=a.set, workers=a.workers, threads=torch.get_num_threads(), cpus=os.cpu_count(),
               wall_s=round(wall, 1), cpu_user_s=round(cpu, 1), cpu_sys_s=sys_s, load_before=load0, load_after=load1,
               deterministic_fde=best_det_fde, levels_meeting_acceptance=passing, table=table, db=db)
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
