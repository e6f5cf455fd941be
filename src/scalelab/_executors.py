"""Executors run planned groups of trials and hand each finished result back.

An executor only decides *where* groups run; the stacked engine decides *how*. The
caller stores each result as soon as its group finishes, so a killed study keeps every
finished group and a rerun trains only what is missing.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ._spec import Trial
from .engine import TrialResult, train_unit


class LocalExecutor:
    """Runs groups one after another in this process (the device's threads do the parallel work)."""

    reports_steps = True  # progress hooks run in this process, so the bar can count steps

    def __init__(self, data_dir: str | None = None, device: str | None = None):
        self.data_dir = data_dir
        self.device = device

    def run(self, groups: Iterable[list[Trial]], on_result: Callable[[TrialResult], None],
            hooks: Iterable[Callable] = (), train: Callable | None = None) -> None:
        """Train each group; ``hooks`` are picklable factories ``factory(trials) -> Hook | None``
        (e.g. :func:`scalelab.probes.make_probe_set`, :class:`scalelab.engine.Progress`);
        ``train``: the study kind's call for a unit (:func:`train_unit` when None)."""
        for group in groups:
            for result in self.run_unit(group, hooks, train=train):
                on_result(result)

    def run_unit(self, group: list[Trial], hooks: Iterable[Callable] = (), start: dict | None = None,
                 checkpoint: Callable | None = None, expect_path: str | None = None,
                 train: Callable | None = None) -> list[TrialResult]:
        """One group, from ``start`` (a decoded checkpoint) if given, handing each epoch's state
        to ``checkpoint(epoch, state)`` (see :func:`scalelab.engine.train_group`)."""
        return (train or train_unit)(group, self.data_dir, self.device, hooks, start=start, checkpoint=checkpoint,
                                     expect_path=expect_path)


def _local(data_dir, device, address=None, **options) -> LocalExecutor:
    if address is not None or options:
        raise ValueError("--address and the Ray options need --executor ray")
    return LocalExecutor(data_dir, device)


def _ray(data_dir, device, address=None, **options):
    from ._ray_executor import RayExecutor   # ray is imported only when asked for

    return RayExecutor(data_dir, device, address, **options)


# name -> factory(data_dir, device, address, **options); adding an executor is one entry here
EXECUTORS: dict[str, Callable] = {"local": _local, "ray": _ray}


def make_executor(name: str = "local", data_dir: str | None = None, device: str | None = None,
                  address: str | None = None, **options):
    """An executor by name (:data:`EXECUTORS`); ``ray`` takes ``address`` and the options of
    :class:`scalelab._ray_executor.RayExecutor`."""
    if name not in EXECUTORS:
        raise ValueError(f"executor {name!r} is not known; use one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](data_dir, device, address, **options)
