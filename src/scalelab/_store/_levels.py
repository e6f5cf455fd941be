"""The per-level view of a stored study that the summary table, the HTML report, the
export and the findings share: one reader that yields each sweep level with its trials,
their epoch metrics and (read on first use) their probe rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._format import level_label

if TYPE_CHECKING:   # the store that reads them (its package imports this module)
    from . import Store


@dataclass
class TrialRecord:
    """One stored trial: its row (``id``, ``level``, ``seed``, ``status``, ``spec``, ...)
    and its epoch metrics; its probe rows ``(step, probe, quantity, value)`` are read
    from the store on first use, since only some readers want them and they are the
    bulk of a study."""

    trial: dict
    epochs: list[dict]
    store: Store | None = field(default=None, repr=False)
    _probes: list[tuple] | None = field(default=None, repr=False)

    @property
    def probes(self) -> list[tuple]:
        if self._probes is None:
            self._probes = self.store.probes(self.trial["id"]) if self.store is not None else []
        return self._probes

    @property
    def status(self) -> str:
        return self.trial["status"]

    @property
    def done(self) -> bool:
        """Finished, not diverged, with epoch metrics to read."""
        return self.trial["status"] == "done" and bool(self.epochs)


@dataclass
class LevelRecord:
    """One sweep level of a study and its trials (one per seed), in stored order."""

    level: dict
    trials: list[TrialRecord]

    @property
    def label(self) -> str:
        return level_label(self.level)

    @property
    def n_diverged(self) -> int:
        return sum(r.status == "diverged" for r in self.trials)


def trial_record(store: Store, trial: dict) -> TrialRecord:
    """One stored trial with its epochs (probes on first use)."""
    return TrialRecord(trial, store.epochs(trial["id"]), store)


def read_levels(store: Store, study: str) -> list[LevelRecord]:
    """Every sweep level of the newest stored study of that name, in stored order."""
    info = store.require_study(study)
    return [LevelRecord(trials[0]["level"], [trial_record(store, t) for t in trials])
            for trials in store.trials_by_level(info["id"]).values()]
