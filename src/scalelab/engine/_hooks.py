"""Hooks: named events of a group's training, for probes, progress and the user's callbacks.

A hook overrides the events it needs; each gets the group's read-only :class:`StepView`.
Executors take hook *factories*: picklable callables ``factory(trials) -> Hook | None``
(module-level functions or small classes), so a group can be trained in another process
with the same hooks built there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


class Hook:
    """Override any of these; the engine calls them in this order."""

    def on_group_start(self, view) -> None:
        """Before the first step (parameters initialised, step 0). A group resumed from a
        checkpoint calls it once with the restored state (``view.step`` > 0); hooks keep no
        state of their own across an interrupt."""

    def on_step_start(self, view) -> None:
        """Before step ``view.step + 1``'s update; ``view.batch`` is its batch."""

    def on_step_end(self, view) -> None:
        """After the update; ``view.loss`` is the step's batch loss (M,)."""

    def on_epoch_end(self, view, epoch: int, metrics: list[dict]) -> None:
        """After an epoch's evaluation; ``metrics[m]`` is model m's epoch record."""

    def on_group_end(self, view) -> None:
        """After the last epoch (the trained models)."""


class StepCounter(Hook):
    """Progress: ``sink(n)`` after every ``every`` steps and with the remainder at each epoch's end."""

    def __init__(self, sink: Callable[[int], None], every: int = 25):
        self.sink, self.every, self._in_epoch = sink, every, 0

    def on_step_end(self, view) -> None:
        self._in_epoch += 1
        if self._in_epoch % self.every == 0:
            self.sink(self.every)

    def on_epoch_end(self, view, epoch, metrics) -> None:
        self.sink(view.steps_per_epoch % self.every)
        self._in_epoch = 0


@dataclass
class Progress:
    """Factory of :class:`StepCounter` hooks that report to ``sink``."""

    sink: Callable[[int], None]
    every: int = 25

    def __call__(self, trials) -> StepCounter:
        return StepCounter(self.sink, self.every)
