"""Where does a whole study's time go? Runs a built-in study (default input-scaling) the way
``scalelab study run`` does, in a fresh store, and times each phase by wrapping the functions
that carry it (a benchmark, not a test: nothing here changes what is computed).

    python benchmarks/study_profile.py [--study input-scaling] [--set KEY=VALUE ...] [--json]

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
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import scalelab  # noqa: E402
from scalelab import _runner, _splits, _store  # noqa: E402
from scalelab._store import _work  # noqa: E402
from scalelab._study import with_overrides  # noqa: E402
from scalelab.engine import _group  # noqa: E402
from scalelab.engine import _checkpoint  # noqa: E402
from scalelab import probes as _probes  # noqa: E402

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
    from scalelab.engine import _plan

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
    timed(_runner, "encode", "checkpoint")
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="input-scaling")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    spec = with_overrides(scalelab.builtin_spec(args.study), args.set) if args.set else \
        scalelab.builtin_spec(args.study)
    instrument()
    with tempfile.TemporaryDirectory() as tmp:
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
    out = dict(study=spec.name, trials=len(trials), model_epochs=model_epochs, wall_s=round(wall, 3),
               compute_s=round(compute, 3), ratio=round(wall / compute, 3) if compute else None,
               per_model_epoch_s=round(compute / model_epochs, 4) if model_epochs else None, phases=phases)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{out['study']}: {out['trials']} trials, {model_epochs} model-epochs; wall {wall:.1f} s, compute "
              f"{compute:.1f} s, ratio {out['ratio']}")
        for k, v in sorted(phases.items(), key=lambda kv: -kv[1]):
            print(f"  {k:12s} {v:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
