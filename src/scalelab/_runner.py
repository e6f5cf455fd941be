"""One process's share of a study: claim a work unit, train it (resuming from its last
checkpoint), store each finished epoch, store its trials, repeat until no unit is left.

Several processes on one store split the units between them; a unit held by a process
that died is taken over once its lease runs out (at once when the owner ran on this host).
An interrupt gives the unit back with its checkpoint, so at most the epoch in progress is
lost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from ._spec import iter_trials, trial_at as _trial_at
from ._store import Heartbeat, LeaseLost, Store, new_owner
from .engine import TrialResult, check_trials, default_group_size, group_key
from .engine._loop import check_path, path_key


@dataclass
class Scan:
    """One pass over a study's trials: what is stored, reused and left, and the left ones by
    group key as (position, key), with one trial of each group key; no trial is kept beyond."""

    trials: int = 0
    stored: int = 0
    reused: int = 0
    todo: dict = field(default_factory=dict)       # group key -> [(position, trial key)]
    first: dict = field(default_factory=dict)      # group key -> its first trial
    probes: bool = False

    @property
    def n_todo(self) -> int:
        return sum(len(v) for v in self.todo.values())

    def groups(self, keys: set, group_size: int | None, data_dir, device) -> list[list[tuple[int, str]]]:
        """The ``keys`` to train as groups of one group key each, balanced (15 at most 8: 8 + 7)."""
        out = []
        for gk, members in self.todo.items():
            members = [m for m in members if m[1] in keys]
            if not members:
                continue
            size = group_size or default_group_size(self.first[gk], data_dir, device)
            per = math.ceil(len(members) / math.ceil(len(members) / size))
            out += [members[i: i + per] for i in range(0, len(members), per)]
        return out


def scan(store: Store, study_id: int, spec, data_dir, chunk: int = 1000, trials=None) -> Scan:
    """Stream the study's trials once (``trials``: (position, trial) pairs, by default every
    trial of a grid ``spec``): link stored ones that compute the same thing, check the data
    of the rest and sort them into group keys."""
    done = store.finished_keys(study_id)
    out, seen, checked, batch = Scan(stored=len(done)), set(), set(), []

    last = [None, None]   # the seeds of a grid point share one TrialSpec: check and key it once

    def flush():
        linked = store.reuse(study_id, [t for _, t in batch])
        out.reused += len(linked)
        for i, t in batch:
            if t.key not in linked:
                if t.spec is not last[0]:
                    check_trials([t], data_dir, checked)   # a spec the data cannot serve fails before training
                    last[:] = t.spec, group_key(t)
                gk = last[1]
                out.todo.setdefault(gk, []).append((i, t.key))
                out.first.setdefault(gk, t)
                out.probes |= t.spec.probes.preset != "none" or bool(t.spec.probes.only)
        batch.clear()

    for i, t in (enumerate(iter_trials(spec)) if trials is None else trials):
        out.trials += 1
        if t.key in done or t.key in seen:   # same key twice in one study: trained once
            continue
        seen.add(t.key)
        batch.append((i, t))
        if len(batch) >= chunk:
            flush()
    flush()
    return out


def run_units(store: Store, study_id: int, spec, executor, hooks: list[Callable], env: dict,
              keep_checkpoints: bool = False, on_unit: Callable[[list, int], None] | None = None,
              poll_s: float = 0.5, on_trials: Callable[[int], None] | None = None,
              trial_at: Callable | None = None, train: Callable | None = None, keys: set | None = None) -> int:
    """Train every unit of the study not done yet (with other processes, if any); returns
    how many units this process trained. A unit's trials are rebuilt by their position
    (``trial_at(position)``, by default the grid ``spec``'s), so no process holds a big
    grid's trials in memory; ``train`` is the study kind's call for a unit (the executor's
    default when None). ``on_unit(trials, epochs_done)`` before each unit. An executor whose
    groups run elsewhere (on a Ray cluster: ``reports_steps`` False) gets every claimable
    unit at once; ``on_trials(n)`` as their results arrive (here: as each unit is stored).
    ``keys``: the trials of the stage being run; units of other stages are left alone."""
    rebuild = trial_at or (lambda i: _trial_at(spec, i))
    if not getattr(executor, "reports_steps", True):
        return _run_units_elsewhere(store, study_id, rebuild, executor, hooks, env, keep_checkpoints, on_trials,
                                    poll_s, train, keys)
    owner = new_owner()
    trained = 0
    while True:
        expect = study_path(store, study_id)
        unit = store.claim(study_id, owner, keys)
        if unit is None:
            if store.units_left(study_id, keys) == 0:
                return trained
            time.sleep(poll_s)  # the rest is held by live processes: wait for them (or their leases)
            continue
        group = _unit_trials(rebuild, unit)
        start = store.load_checkpoint(unit.id) if unit.epoch else None
        if on_unit is not None:
            on_unit(group, unit.epoch)

        def checkpoint(epoch: int, state: dict, wid=unit.id) -> None:
            store.save_checkpoint(wid, owner, epoch, state)

        try:
            with Heartbeat(store.path, unit.id, owner, store.lease_s):
                results = _train(executor, group, hooks, start, checkpoint, expect, train)
            store.finish_unit(study_id, unit.id, owner, results, env, keep_checkpoints)
            trained += 1
            if on_trials is not None:
                on_trials(len(results))
        except LeaseLost:
            continue   # another process holds it now and resumes from the last checkpoint
        except BaseException:
            try:   # give the unit back at once; should that fail, its lease runs out instead
                store.release(unit.id, owner)
            except Exception:
                pass
            raise


def _unit_trials(rebuild, unit) -> list:
    group = [rebuild(i) for i in unit.trial_index]
    if [t.key for t in group] != unit.trial_keys:
        raise ValueError(f"work unit {unit.id} does not match this study's spec; it was planned by another "
                         f"scalelab version")
    return group


def _run_units_elsewhere(store, study_id, rebuild, executor, hooks, env, keep_checkpoints, on_trials, poll_s,
                         train=None, keys=None) -> int:
    """Claim every unit nobody holds, hand them to the executor together (the cluster runs
    them in parallel) and store each unit in one transaction when its last trial is back.
    Results come back as whole groups, so these units train from their start."""
    from contextlib import ExitStack

    owner, trained = new_owner(), 0
    while True:
        units = []
        while (unit := store.claim(study_id, owner, keys)) is not None:
            units.append(unit)
        if not units:
            if store.units_left(study_id, keys) == 0:
                return trained
            time.sleep(poll_s)
            continue
        groups = [_unit_trials(rebuild, u) for u in units]
        unit_of = {t.key: u for u, g in zip(units, groups) for t in g}
        pending: dict[int, list] = {u.id: [] for u in units}

        expect = study_path(store, study_id)

        def on_result(result):
            check_path(result.path, expect, "this study's stored trials")
            u = unit_of[result.trial.key]
            pending[u.id].append(result)
            if on_trials is not None:
                on_trials(1)
            if len(pending[u.id]) == len(u.trial_keys):
                store.finish_unit(study_id, u.id, owner, pending.pop(u.id), env, keep_checkpoints)

        try:
            with ExitStack() as stack:
                for u in units:
                    stack.enter_context(Heartbeat(store.path, u.id, owner, store.lease_s))
                executor.run(groups, on_result, hooks, **({"train": train} if train else {}))
        except BaseException:
            for uid in pending:   # give back what did not finish; should that fail, leases run out
                try:
                    store.release(uid, owner)
                except Exception:
                    pass
            raise
        trained += len(units)


def study_path(store: Store, study_id: int) -> str | None:
    """The compile outcome (:func:`path_key`) the study's stored trials ran on, if any recorded one."""
    return path_key(store.compile_outcome_env(study_id))


def _train(executor, group, hooks, start, checkpoint, expect=None, train=None) -> list[TrialResult]:
    more = {"train": train} if train else {}   # an executor of the user's may not know study kinds' calls
    if hasattr(executor, "run_unit"):
        return executor.run_unit(group, hooks, start=start, checkpoint=checkpoint, expect_path=expect, **more)
    results: list[TrialResult] = []   # an executor without checkpoints: the unit trains from scratch
    executor.run([group], results.append, hooks, **more)
    return results
