"""A study end to end: spec → trials (grid × seeds) → groups → executor → store."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ._executors import LocalExecutor
from ._runner import run_units, scan
from ._spec import SpecError, StudySpec, load_spec
from ._splits import trial_split
from ._store import Store
from .engine import Progress as StepProgress, resolve_device


def environment(device: str) -> dict:
    """What a trial ran on: versions, device and threads, stored with every trial."""
    from . import __version__

    dev = resolve_device(device)
    env = dict(scalelab=__version__, python=platform.python_version(), torch=torch.__version__,
               numpy=np.__version__, platform=platform.platform(), device=str(dev),
               threads=torch.get_num_threads(), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))
    if dev.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(dev)
    return env


def spec_hash(spec: StudySpec) -> str:
    return hashlib.sha256(json.dumps(spec.model_dump(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def builtin_studies() -> dict[str, Path]:
    folder = resources.files("scalelab") / "studies"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def builtin_spec(name: str) -> StudySpec:
    studies = builtin_studies()
    if name not in studies:
        raise SpecError(f"no built-in study named {name!r}; `scalelab study list` shows: {', '.join(sorted(studies))}")
    return StudySpec.from_toml(studies[name])


def with_overrides(spec: StudySpec, overrides: list[str]) -> StudySpec:
    """Apply ``key=value`` overrides (value parsed as TOML, else taken as a string)."""
    import tomllib

    from ._spec import _set_path, parse_spec

    d = spec.model_dump()
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=0.01")
        key, value = item.split("=", 1)
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        _set_path(d, key.strip(), parsed)
    return parse_spec(d, source="--set")


def run_study(spec, db: "str | Path | Store" = "scalelab.db", data_dir: str | None = None,
              device: str | None = None, progress: bool = False, executor=None, group_size: int | None = None,
              probes: str | None = None, hooks: list[Callable] = (), keep_checkpoints: bool = False,
              on_plan: Callable[[dict], None] | None = None) -> int:
    """Run every trial of ``spec`` not yet in the store; returns the study's id.

    A trial already stored by any study of the store with the same resolved spec and seed
    is reused, not retrained. The rest is planned once into work units (groups) that this
    and any other process running the same study claim; each finished epoch is a
    checkpoint, so a rerun after an interrupt continues from the last finished epoch.
    ``hooks``: extra hook factories ``factory(trials) -> Hook | None``; ``on_plan`` gets
    the counts (trials, stored, reused, todo) before training starts.
    """
    spec = load_spec(spec)
    if probes is not None:  # a preset chosen at run time (CLI --probes) is part of the spec
        spec = spec.model_copy(update={"probes": spec.probes.model_copy(update={"preset": probes})})
        spec = load_spec(spec.model_dump())
    if not isinstance(db, Store):
        with Store(db) as store:   # a store this call opened is closed again (its WAL files folded in)
            return run_study(spec, store, data_dir, device, progress, executor, group_size, None, hooks,
                             keep_checkpoints, on_plan)
    store = db
    sid = store.study_id(spec.name, spec_hash(spec), spec.model_dump())
    plan = scan(store, sid, spec, data_dir)
    if on_plan is not None:
        on_plan(dict(trials=plan.trials, stored=plan.stored, reused=plan.reused, todo=plan.n_todo))
    if not plan.n_todo:
        return sid
    env = environment(device or next(iter(plan.first.values())).spec.train.device)
    store.plan_units(sid, [k for members in plan.todo.values() for _, k in members],
                     lambda keys: plan.groups(keys, group_size, data_dir, device))
    executor = executor or LocalExecutor(data_dir, device)
    factories = list(hooks)
    if plan.probes:
        from .probes import make_probe_set

        factories.insert(0, make_probe_set)
    if not progress:
        run_units(store, sid, spec, executor, factories, env, keep_checkpoints)
        return sid
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    def steps(trial, epochs_done=0):
        s = trial.spec
        n = len(trial_split(s, data_dir)[1].X_train)
        return math.ceil(n / s.train.batch_size) * (s.train.epochs - epochs_done)

    # a group trains its models together: its steps count once
    total = sum(steps(plan.first[gk]) * len(plan.groups({k for _, k in members}, group_size, data_dir, device))
                for gk, members in plan.todo.items())
    cols = [TextColumn(f"{spec.name}: {plan.n_todo} trials"), BarColumn(), MofNCompleteColumn(),
            TextColumn("steps"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*cols, console=_stderr_console(), transient=False) as bar:
        task = bar.add_task("train", total=total)
        run_units(store, sid, spec, executor, [*factories, StepProgress(lambda n: bar.advance(task, n))], env,
                  keep_checkpoints, on_unit=lambda g, e: bar.advance(task, steps(g[0]) - steps(g[0], e)))
    return sid


def _stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr)
