"""A study end to end: spec → trials (grid × seeds) → groups → executor → store."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ._executors import make_executor
from ._spec import SpecError, StudySpec, expand, load_spec
from ._splits import trial_split
from ._store import Store
from ._suggest import did_you_mean
from .engine import Progress as StepProgress, check_trials, plan_groups, resolve_device


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
    # descriptions are presentation: editing one does not make a new study (nor rerun it)
    dump = spec.model_dump(exclude={"descriptions"})
    return hashlib.sha256(json.dumps(dump, sort_keys=True, default=str).encode()).hexdigest()[:16]


def builtin_studies() -> dict[str, Path]:
    folder = resources.files("scalelab") / "studies"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def builtin_spec(name: str) -> StudySpec:
    studies = builtin_studies()
    if name not in studies:
        raise SpecError(f"no built-in study named {name!r};{did_you_mean(name, studies)} `scalelab study list` shows: "
                        f"{', '.join(sorted(studies))}")
    return StudySpec.from_toml(studies[name])


def with_overrides(spec: StudySpec, overrides: list[str]) -> StudySpec:
    """Apply ``key=value`` overrides (value parsed as TOML, else taken as a string)."""
    import tomllib

    from ._spec import _set_path, parse_spec
    from ._spec._parse import prune_descriptions

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
    prune_descriptions(d)
    return parse_spec(d, source="--set")


def run_study(spec, db: "str | Path | Store" = "scalelab.db", data_dir: str | None = None,
              device: str | None = None, progress: bool = False, executor=None, group_size: int | None = None,
              probes: str | None = None, progress_every: float = 30.0, hooks=()) -> int:
    """Run every trial of ``spec`` not yet in the store; returns the study's id.

    ``spec``: a :class:`StudySpec`, a dict or a TOML path; ``db``: a path or a :class:`Store`;
    ``progress``: show progress on stderr (a bar on a terminal, else a line every
    ``progress_every`` seconds). ``executor`` is an executor object or a name (``"local"``,
    the default, or ``"ray"``: a local Ray instance; ``RayExecutor(address=...)`` joins a
    cluster). ``hooks`` are your own picklable hook factories ``factory(trials) -> Hook | None``,
    run with each group.

    >>> spec = scalelab.builtin_spec("feature-scales")
    >>> scalelab.run_study(spec, "scalelab.db", progress=True)
    """
    spec = load_spec(spec)
    if probes is not None:  # a preset chosen at run time (CLI --probes) is part of the spec
        spec = spec.model_copy(update={"probes": spec.probes.model_copy(update={"preset": probes})})
        spec = load_spec(spec.model_dump())
    store = db if isinstance(db, Store) else Store(db)
    trials = expand(spec)
    sid = store.study_id(spec.name, spec_hash(spec), spec.model_dump())
    done = store.finished_keys(sid)
    todo = [t for t in trials if t.key not in done]
    if not todo:
        return sid
    check_trials(todo, data_dir)  # a spec the data cannot serve fails here, before any progress output
    dev = device or trials[0].spec.train.device
    groups = plan_groups(todo, group_size, data_dir, device)
    if executor is None or isinstance(executor, str):
        executor = make_executor(executor or "local", data_dir, device)

    total = 0
    for g in groups:
        s = g[0].spec
        n = len(trial_split(s, data_dir)[1].X_train)
        total += math.ceil(n / s.train.batch_size) * s.train.epochs

    env = {}

    def save(result):
        if result.env is None and not env:  # results from elsewhere say where they ran; this driver may have no GPU
            env.update(environment(dev))
        store.save_trial(sid, result, env)
        if advance_trials is not None:
            advance_trials(1)

    advance_trials = None
    by_steps = getattr(executor, "reports_steps", True)

    hooks = list(hooks)
    if any(t.spec.probes.preset != "none" or t.spec.probes.only for t in todo):
        from .probes import make_probe_set

        hooks.append(make_probe_set)

    if progress:
        from ._progress import study_progress

        # groups that run elsewhere report no steps: count trials as their results arrive
        unit_total = total if by_steps else len(todo)
        with study_progress(spec.name, unit_total, len(todo), len(groups), progress_every,
                            unit="steps" if by_steps else "trials") as advance:
            if by_steps:
                executor.run(groups, save, [*hooks, StepProgress(advance)])
            else:
                advance_trials = advance
                executor.run(groups, save, hooks)
    else:
        executor.run(groups, save, hooks)
    return sid
