"""Executors run planned groups of trials and hand each finished result back.

An executor only decides *where* groups run; the stacked engine decides *how*. The
caller stores each result as soon as its group finishes, so a killed study keeps every
finished group and a rerun trains only what is missing.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ._spec import Trial
from .engine import TrialResult, train_group


class LocalExecutor:
    """Runs groups one after another in this process (the device's threads do the parallel work)."""

    def __init__(self, data_dir: str | None = None, device: str | None = None):
        self.data_dir = data_dir
        self.device = device

    def run(self, groups: Iterable[list[Trial]], on_result: Callable[[TrialResult], None],
            hooks: Iterable[Callable] = ()) -> None:
        """Train each group; ``hooks`` are picklable factories ``factory(trials) -> Hook | None``
        (e.g. :func:`scalelab.probes.make_probe_set`, :class:`scalelab.engine.Progress`)."""
        for group in groups:
            for result in self.run_unit(group, hooks):
                on_result(result)

    def run_unit(self, group: list[Trial], hooks: Iterable[Callable] = (), start: dict | None = None,
                 checkpoint: Callable | None = None) -> list[TrialResult]:
        """One group, from ``start`` (a decoded checkpoint) if given, handing each epoch's state
        to ``checkpoint(epoch, state)`` (see :func:`scalelab.engine.train_group`)."""
        built = [h for h in (factory(group) for factory in hooks) if h is not None]
        return train_group(group, self.data_dir, self.device, hooks=built, start=start, checkpoint=checkpoint)


EXECUTORS = {"local": LocalExecutor}
