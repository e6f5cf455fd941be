"""The registry of study kinds and what a strategy yields: :class:`Stage`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

STRATEGIES: list = []


def register(strategy) -> None:
    """Add a study kind; the last registered one whose ``applies(spec)`` is true runs a spec
    (so a special kind registered after the grid takes its specs from it)."""
    STRATEGIES.insert(0, strategy)


def strategy_for(spec):
    return next(s for s in STRATEGIES if s.applies(spec))


@dataclass
class Stage:
    """Trials the engine trains before the next stage is computed.

    ``trials()``: (position, trial) pairs, streamed; ``trial_at(position)`` rebuilds one
    trial (a process sharing the study rebuilds a unit's trials from their positions);
    ``groups(plan, keys, group_size)``: the work units to plan for the ``keys`` not stored
    yet, as lists of (position, key) (``plan``: the runner's :class:`~scalelab._runner.Scan`
    of the stage); ``train``: the executor's call for a unit, picklable, as
    :func:`~scalelab.engine.train_group` is called (None: that one); ``count``: progress in
    ``steps`` or ``trials``."""

    name: str
    trials: Callable[[], Iterable]
    trial_at: Callable[[int], object]
    groups: Callable
    train: Callable | None = None
    count: str = "steps"
