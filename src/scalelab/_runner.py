"""One process's share of a study: claim a work unit, train it (resuming from its last
checkpoint), store each finished epoch, store its trials, repeat until no unit is left.

Several processes on one store split the units between them; a unit held by a process
that died is taken over once its lease runs out (at once when the owner ran on this host).
An interrupt gives the unit back with its checkpoint, so at most the epoch in progress is
lost.
"""

from __future__ import annotations

import time
from typing import Callable

from ._store import Heartbeat, LeaseLost, Store, new_owner
from .engine import TrialResult, decode, encode


def run_units(store: Store, study_id: int, trials_by_key: dict, executor, hooks: list[Callable], env: dict,
              keep_checkpoints: bool = False, on_unit: Callable[[list, int], None] | None = None,
              poll_s: float = 0.5) -> int:
    """Train every unit of the study not done yet (with other processes, if any); returns
    how many units this process trained. ``on_unit(trials, epochs_done)`` before each unit."""
    owner = new_owner()
    trained = 0
    levels = {k: t.level for k, t in trials_by_key.items()}
    while True:
        unit = store.claim(study_id, owner)
        if unit is None:
            if store.units_left(study_id) == 0:
                return trained
            time.sleep(poll_s)  # the rest is held by live processes: wait for them (or their leases)
            continue
        group = [trials_by_key[k] for k in unit.trial_keys]
        blob = store.load_checkpoint(unit.id) if unit.epoch else None
        if on_unit is not None:
            on_unit(group, unit.epoch)

        def checkpoint(epoch: int, state: dict, wid=unit.id) -> None:
            store.save_checkpoint(wid, owner, epoch, encode(state))

        try:
            with Heartbeat(store.path, unit.id, owner, store.lease_s):
                results = _train(executor, group, hooks, decode(blob) if blob else None, checkpoint)
            store.finish_unit(study_id, unit.id, owner, results, env, levels, keep_checkpoints)
            trained += 1
        except LeaseLost:
            continue   # another process holds it now and resumes from the last checkpoint
        except BaseException:
            try:   # give the unit back at once; should that fail, its lease runs out instead
                store.release(unit.id, owner)
            except Exception:
                pass
            raise


def _train(executor, group, hooks, start, checkpoint) -> list[TrialResult]:
    if hasattr(executor, "run_unit"):
        return executor.run_unit(group, hooks, start=start, checkpoint=checkpoint)
    results: list[TrialResult] = []   # an executor without checkpoints: the unit trains from scratch
    executor.run([group], results.append, hooks)
    return results
