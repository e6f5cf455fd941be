"""The per-level view of a stored study that the summary table, the HTML report and the
findings share: how a level is labelled, how numbers are written, and one reader that
yields each sweep level with its trials, their epoch metrics and (read on first use)
their probe rows.

Labels and number formats live here once so that a level reads the same in the CLI
table, the CSV, the HTML report and every finding's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._store import Store


def value_label(value) -> str:
    """How one grid value is shown: fractions stay as written ("1/255"), floats as %g."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def value_number(value) -> float | None:
    """A grid value as a number when it is one ("1/255" -> 0.00392..., 3 -> 3.0), else None."""
    from fractions import Fraction

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(Fraction(value.replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        return None


def level_label(level: dict) -> str:
    """How a whole sweep level is shown: ``"input.scale=1/255, seed=0"``, or ``"(base)"``
    for a study without factors."""
    return ", ".join(f"{k}={value_label(v)}" for k, v in level.items()) or "(base)"


def level_description(level: dict, descriptions: dict) -> str:
    """The spec's one-line descriptions of a level's values, joined ("" when it has none):
    ``descriptions`` maps "factor=value" (``arm=NAME`` for an arm) to a line."""
    norm = {k.replace(" ", ""): v for k, v in (descriptions or {}).items()}
    return "; ".join(d for k, v in level.items() if (d := norm.get(f"{k}={value_label(v)}".replace(" ", ""))))


def fmt(x, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; a missing one (None) as a dash."""
    return "—" if x is None else f"{x:.{digits}g}"


def pct(x: float) -> str:
    """A share as a percentage: one decimal below 10%, none above, and "<0.1%" for tiny
    non-zero shares (so a share that is not exactly zero never reads as 0%)."""
    if x == 0:
        return "0%"
    if x < 0.001:
        return "<0.1%"
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"


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
