"""Where does a whole study's time go? Runs a built-in study (default input-scaling) the way
``scalelab study run`` does, in a fresh store, and times each phase by wrapping the functions
that carry it (a benchmark, not a test: nothing here changes what is computed).

    python benchmarks/study_profile.py [--study input-scaling] [--set KEY=VALUE ...] [--json]
                                       [--cold] [--repeat N]

``--cold``: the first run on a fresh clone: an empty torch.compile cache
(TORCHINDUCTOR_CACHE_DIR) and an empty scalelab cache (SCALELAB_CACHE: the decompressed,
verified data sets), both in a temporary folder removed afterwards. ``--repeat N``: N runs,
each in its own process (so each is cold or warm alike), and the median of every figure;
the single runs and the load average are in the output too.

Phases: data (loading, checksum, split), setup (the stacked group: transforms, parameters,
optimizer), first_step (the first training step of each group: torch.compile's graph build
when the step compiles), train (the other steps), evaluate (validation and test metrics per
epoch), probes, checkpoint (capturing, encoding and storing the per-epoch state), store (the
rest of the store's work: planning, claiming, storing finished trials), other (the rest of
the wall time: Python start-up is not in it). ``compute_s`` is model-epochs × the engine's
per-model-epoch time at the study's group size, measured here as the steady-state train
time per model-epoch (the train phase over its model-epochs); ``ratio`` is wall / compute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PHASES = defaultdict(float)
_active: list[str] = []   # nested wraps count once, in the outermost phase


def timed(owner, name: str, phase: str) -> None:
    """Replace ``owner.name`` by a wrapper that adds its wall time to ``phase``."""
    fn = getattr(owner, name)

    def wrapper(*a, **kw):
        if _active:
            return fn(*a, **kw)
        _active.append(phase)
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            PHASES[phase] += time.perf_counter() - t
            _active.pop()

    setattr(owner, name, wrapper)


def instrument() -> None:
    from scalelab import _runner, _splits
    from scalelab import probes as _probes
    from scalelab._store import _work
    from scalelab.engine import _checkpoint, _group, _plan

    for owner in (_splits, _plan):   # the first load reads and checks the files; later ones hit the cache
        timed(owner, "load_dataset", "data")
    timed(_splits, "trial_split", "data")
    timed(_group, "trial_split", "data")
    timed(_group.StackedGroup, "__init__", "setup")
    timed(_group.StackedGroup, "evaluate", "evaluate")
    for hook in ("on_group_start", "on_step_start", "on_step_end", "on_group_end"):
        timed(_probes.ProbeSet, hook, "probes")
    for name in ("capture", "encode"):
        if hasattr(_checkpoint, name):
            timed(_checkpoint, name, "checkpoint")
    for owner, name in ((_runner, "encode"), (_runner, "CheckpointWriter.save"), (_runner, "CheckpointWriter.wait")):
        *path, last = name.split(".")
        for p in path:
            owner = getattr(owner, p, None)
        if owner is not None and hasattr(owner, last):
            timed(owner, last, "checkpoint")
    timed(_work.WorkMixin, "save_checkpoint", "checkpoint")
    for name in ("finish_unit", "plan_units", "claim"):
        timed(_work.WorkMixin, name, "store")
    # the first step of a group (graph build when it compiles), then the rest
    step = _group.StackedGroup.train_step
    seen: set[int] = set()

    def train_step(self, idx):
        phase = "train" if id(self) in seen else "first_step"
        seen.add(id(self))
        t = time.perf_counter()
        try:
            return step(self, idx)
        finally:
            PHASES[phase] += time.perf_counter() - t
            if phase == "train":
                PHASES["train_model_steps"] += self.M

    _group.StackedGroup.train_step = train_step


def _median_of(runs: list[dict]) -> dict:
    """The median of every number of ``runs`` (phases included), other fields from the first."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and len({r[k] for r in runs}) > 1:
            out[k] = round(statistics.median(r[k] for r in runs), 3)
    keys = sorted({k for r in runs for k in r["phases"]})
    out["phases"] = {k: round(statistics.median(r["phases"].get(k, 0.0) for r in runs), 3) for k in keys}
    return out


def repeat(argv: list[str], n: int) -> dict:
    """``n`` runs in their own processes; the medians, the single runs and the load."""
    runs = []
    for _ in range(n):
        res = subprocess.run([sys.executable, __file__, *argv, "--json"], capture_output=True, text=True, check=True)
        runs.append(json.loads(res.stdout))
    out = _median_of(runs)
    out.update(repeats=n, runs=runs, load_average=os.getloadavg(), cpus=os.cpu_count())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="input-scaling")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cold", action="store_true", help="empty compile and data caches (a fresh clone's first run)")
    ap.add_argument("--repeat", type=int, default=1, help="runs (each in its own process); medians reported")
    args = ap.parse_args(argv)
    if args.repeat > 1:
        argv = list(sys.argv[1:] if argv is None else argv)
        argv = [a for i, a in enumerate(argv) if a != "--json" and not a.startswith("--repeat")
                and not (i and argv[i - 1] == "--repeat")]
        out = repeat(argv, args.repeat)
        _print(out, args.json)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.cold:   # before torch is imported: its compile cache is read from the environment
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{tmp}/inductor"
            os.environ["SCALELAB_CACHE"] = f"{tmp}/scalelab-cache"
        t_import = time.perf_counter()
        import scalelab
        from scalelab import _store
        from scalelab._study import with_overrides
        t_import = time.perf_counter() - t_import
        spec = with_overrides(scalelab.builtin_spec(args.study), args.set) if args.set else \
            scalelab.builtin_spec(args.study)
        instrument()
        t0 = time.perf_counter()
        scalelab.run_study(spec, f"{tmp}/profile.db")
        wall = time.perf_counter() - t0
        store = _store.Store(f"{tmp}/profile.db", readonly=True)
        trials = store.trials(store.require_study(spec.name)["id"])
        store.close()
    model_epochs = sum(spec.train.epochs for _ in trials)
    # steady state: the train phase's time per model-step, times every model-step of the study
    # (each model also had one first step, timed apart because it may compile)
    per_model_step = PHASES["train"] / max(1.0, PHASES["train_model_steps"])
    compute = per_model_step * (PHASES["train_model_steps"] + len(trials))
    phases = {k: round(v, 3) for k, v in PHASES.items() if k != "train_model_steps"}
    phases["other"] = round(wall - sum(v for k, v in PHASES.items() if k != "train_model_steps"), 3)
    out = dict(study=spec.name, cold=args.cold, trials=len(trials), model_epochs=model_epochs,
               wall_s=round(wall, 3), compute_s=round(compute, 3), ratio=round(wall / compute, 3) if compute else None,
               per_model_epoch_s=round(compute / model_epochs, 4) if model_epochs else None,
               import_s=round(t_import, 3), phases=phases)
    _print(out, args.json)
    return 0


def _print(out: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, indent=1))
        return
    runs = f", median of {out['repeats']} runs" if out.get("repeats") else ""
    print(f"{out['study']}{' (cold)' if out['cold'] else ''}: {out['trials']} trials, {out['model_epochs']} "
          f"model-epochs; wall {out['wall_s']:.1f} s, compute {out['compute_s']:.1f} s, ratio {out['ratio']}{runs}")
    for k, v in sorted(out["phases"].items(), key=lambda kv: -kv[1]):
        print(f"  {k:12s} {v:8.2f} s")


if __name__ == "__main__":
    sys.exit(main())
