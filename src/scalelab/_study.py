"""A study end to end: spec → its study kind's stages of trials (studies/) → work units →
executor → store."""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Callable

from ._executors import LocalExecutor, make_executor
from ._runner import run_units, scan
from ._spec import SpecError, StudySpec, load_spec
from ._spec._key import without_new_defaults
from .data import trial_split
from ._store import Store
from ._suggest import did_you_mean
from ._workers import helper_processes, threads_for
from .engine import Progress as StepProgress, environment  # noqa: F401  (environment: attach reads it here)


def spec_hash(spec: StudySpec) -> str:
    # descriptions are presentation: editing one does not make a new study (nor rerun it)
    # a field added since (at its default) keeps the hash the study had before it
    dump = without_new_defaults(spec.model_dump(exclude={"descriptions"}))
    return hashlib.sha256(json.dumps(dump, sort_keys=True, default=str).encode()).hexdigest()[:16]


def builtin_studies() -> dict[str, Path]:
    folder = resources.files("scalelab") / "studies"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def builtin_spec(name: str) -> StudySpec:
    studies = builtin_studies()
    if name not in studies:
        raise SpecError(f"no built-in study named {name!r};{did_you_mean(name, studies)} `scalelab study list` shows: "
                        f"{', '.join(sorted(studies))}")
    return load_spec(studies[name])


def with_overrides(spec: StudySpec, overrides: list[str]) -> StudySpec:
    """Apply ``key=value`` overrides (value parsed as TOML, else taken as a string)."""
    import tomllib

    from ._spec import _set_path, parse_spec
    from ._spec._parse import prune_descriptions

    d = spec.model_dump()
    checks = []
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=0.01")
        key, value = item.split("=", 1)
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        _set_path(d, key.strip(), parsed)
        checks.append((key.strip(), parsed))
    prune_descriptions(d)
    out = parse_spec(d, source="--set")   # a bad value is named first, then a conflict with the grid
    for key, value in checks:
        _check_not_swept(out, key, value)
    return out


def _check_not_swept(spec: StudySpec, key: str, value) -> None:
    """A key the grid sweeps or an arm sets would silently win over ``--set``: say so, and how
    to override it instead."""
    if key in spec.grid:
        grid = {**spec.grid, key: [value]}
        inline = _inline(grid)
        raise SpecError(f"--set {key}: the grid sweeps {key} over {json.dumps(spec.grid[key], default=str)}, so the "
                        f"grid would win; to run only this value, set the grid instead: --set 'grid={{{inline}}}'")
    for arm, sets in spec.arms.items():
        if key in sets:
            raise SpecError(f"--set {key}: arm {arm!r} sets {key} = {json.dumps(sets[key], default=str)}, so the arm "
                            f"would win; change it with --set 'arms.{arm}={{{_inline({**sets, key: value})}}}'")


def _inline(d: dict) -> str:
    return ", ".join(f"{json.dumps(k)} = {json.dumps(v, default=str)}" for k, v in d.items())


def run_study(spec, db: "str | Path | Store" = "scalelab.db", data_dir: str | None = None,
              device: str | None = None, progress: bool = False, executor=None, group_size: int | None = None,
              probes: str | None = None, progress_every: float = 30.0, hooks: list[Callable] = (),
              keep_checkpoints: bool = False, on_plan: Callable[[dict], None] | None = None,
              workers: int = 1) -> int:
    """Run every trial of ``spec`` not yet in the store; returns the study's id.

    ``spec``: a :class:`StudySpec`, a dict or a TOML path; ``db``: a path or a :class:`Store`;
    ``progress``: show progress on stderr (a bar on a terminal, else a line every
    ``progress_every`` seconds). ``executor`` is an executor object or a name (``"local"``,
    the default, or ``"ray"``: a local Ray instance; ``RayExecutor(address=...)`` joins a
    cluster). ``hooks`` are your own picklable hook factories ``factory(trials) -> Hook | None``,
    run with each group; ``on_plan`` gets the counts (trials, stored, reused, todo) before
    training starts. ``workers``: with the local executor on the CPU, up to this many processes
    train a stage's work units side by side (helpers start once a stage has run a few seconds;
    the numbers are the same as with one; ``hooks`` then travel to them pickled).

    A trial already stored by any study of the store with the same resolved spec and seed
    is reused, not retrained. The rest is planned once into work units (groups) that this
    and any other process running the same study claim; each finished epoch is a
    checkpoint, so a rerun after an interrupt continues from the last finished epoch.

    >>> spec = scalelab.builtin_spec("feature-scales")
    >>> scalelab.run_study(spec, "scalelab.db", progress=True)
    """
    spec = load_spec(spec)
    if probes is not None:  # a preset chosen at run time (CLI --probes) is part of the spec
        spec = spec.model_copy(update={"probes": spec.probes.model_copy(update={"preset": probes})})
        spec = load_spec(spec.model_dump())
    if not isinstance(db, Store):
        with Store(db) as store:   # a store this call opened is closed again (its WAL files folded in)
            return run_study(spec, store, data_dir, device, progress, executor, group_size, None, progress_every,
                             hooks, keep_checkpoints, on_plan, workers)
    store = db
    from .studies import strategy_for

    strategy = strategy_for(spec)
    strategy.check(spec)
    sid = store.study_id(spec.name, spec_hash(spec), spec.model_dump())
    if executor is None or isinstance(executor, str):
        executor = make_executor(executor or "local", data_dir, device)
    factories = list(hooks)
    for i, stage in enumerate(strategy.stages(spec, store, sid, data_dir, device)):
        _run_stage(store, sid, spec, stage, executor, factories, data_dir, device, progress, group_size,
                   progress_every, keep_checkpoints, on_plan, workers, i)
    return sid


def run_cv_study(spec: StudySpec, store, data_dir: str | None = None, device: str | None = None,
                 progress: bool = False) -> int:
    """A cross-validated study (a spec with [cv]) into ``store``: :func:`run_study` runs it
    as the cross-validation study kind's stages; kept for callers of the first runner."""
    if spec.cv is None:
        raise SpecError(f"{spec.name}: run_cv_study runs a spec with a [cv] section; use run_study")
    return run_study(spec, store, data_dir, device, progress)


def _run_stage(store, sid, spec, stage, executor, factories, data_dir, device, progress, group_size,
               progress_every, keep_checkpoints, on_plan, workers: int = 1, stage_index: int = 0) -> None:
    """One stage of a study (studies.Stage): scan it, plan its work units, train them, with up
    to ``workers - 1`` helper processes beside this one (see ``_workers``). ``progress``: show
    it (True), not (False), or a helper's sink (a callable with ``skip``) that relays it."""
    plan = scan(store, sid, spec, data_dir, trials=stage.trials())
    if on_plan is not None:
        on_plan(dict(trials=plan.trials, stored=plan.stored, reused=plan.reused, todo=plan.n_todo))
    if not plan.n_todo:
        return
    keys = {k for members in plan.todo.values() for _, k in members}
    store.plan_units(sid, [k for members in plan.todo.values() for _, k in members],
                     lambda keys: stage.groups(plan, keys, group_size))
    # groups that run elsewhere report where they ran (this driver may have no GPU) and no steps
    local = getattr(executor, "reports_steps", True)
    env_device = device or next(iter(plan.first.values())).spec.train.device
    helpers = 0
    if workers > 1 and isinstance(executor, LocalExecutor) and str(env_device or "cpu").startswith("cpu"):
        helpers = min(workers, store.units_left(sid, keys)) - 1
    payload = None   # what a helper needs to run this stage, built only when there are helpers
    if helpers > 0:
        payload = dict(db=str(store.path), sid=sid, spec=spec.model_dump(), stage=stage_index, data_dir=data_dir,
                       device=device, hooks=list(factories), group_size=group_size,
                       keep_checkpoints=keep_checkpoints, threads=threads_for(helpers + 1))
    with _threads(payload["threads"] if payload else None):
        env = environment(env_device) if local else {}
        _train_stage(store, sid, spec, stage, plan, keys, executor, factories, env, data_dir, device, progress,
                     group_size, progress_every, keep_checkpoints, helpers, payload)


@contextmanager
def _threads(n: int | None):
    """torch's threads set to ``n`` while helper processes share the cores (then put back)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_stage(store, sid, spec, stage, plan, keys, executor, factories, env, data_dir, device, progress, group_size,
                 progress_every, keep_checkpoints, helpers, payload) -> None:
    local = getattr(executor, "reports_steps", True)
    if plan.probes:
        from .probes._set import make_probe_set

        factories = [make_probe_set, *factories]
    units = dict(trial_at=stage.trial_at, train=stage.train, keys=keys)
    relay = progress if callable(progress) else None   # a helper's sink
    if relay is None and not progress:
        with helper_processes(payload, helpers) if helpers > 0 else nullcontext():
            run_units(store, sid, spec, executor, factories, env, keep_checkpoints, **units)
        return
    from ._progress import study_progress

    def display(total, n_trials, n_groups, **kw):
        if relay is None:
            return study_progress(name, total, n_trials, n_groups, progress_every, **kw)
        return nullcontext(relay)   # a helper: its progress goes to the driver's display

    def shared(advance):
        return helper_processes(payload, helpers, advance) if helpers > 0 else nullcontext(advance)

    def steps(trial, epochs_done=0):
        s = trial.spec
        per_epoch = math.ceil(len(trial_split(s, data_dir)[1].X_train) / s.train.batch_size)
        if s.train.steps:   # train.steps: the steps left after the epochs done
            return max(0, s.train.steps - per_epoch * epochs_done)
        return per_epoch * (s.train.epochs - epochs_done)

    name = spec.name if stage.name == "trials" else f"{spec.name} ({stage.name})"
    if not local or stage.count == "trials":   # count trials as their results reach the store
        with display(plan.n_todo, plan.n_todo, store.units_left(sid, keys), unit="trials") as shown, \
                shared(shown) as advance:
            run_units(store, sid, spec, executor, factories, env, keep_checkpoints, on_trials=advance, **units)
        return
    # a group trains its models together: its steps count once
    groups = {gk: plan.groups({k for _, k in members}, group_size, data_dir, device)
              for gk, members in plan.todo.items()}
    total = sum(steps(plan.first[gk]) * len(g) for gk, g in groups.items())
    rate = [0.0]   # model-epochs per step of the unit training now: its M models / steps per epoch

    def on_unit(g, epochs_done):
        # steps a checkpoint already holds are not trained now: out of the total, so that the
        # ETA counts only the steps left (counted as done, they made it far too short)
        advance.skip(steps(g[0]) - steps(g[0], epochs_done))
        rate[0] = len(g) * g[0].spec.train.epochs / max(1, steps(g[0]))

    with display(total, plan.n_todo, sum(map(len, groups.values())), per_step=lambda: rate[0]) as shown, \
            shared(shown) as advance:
        run_units(store, sid, spec, executor, [*factories, StepProgress(advance)], env, keep_checkpoints,
                  on_unit=on_unit, **units)
