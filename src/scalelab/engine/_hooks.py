"""Hooks: named events of a group's training, for probes, progress and the user's callbacks.

A hook overrides the events it needs; each gets the group's read-only :class:`StepView`.
Executors take hook *factories*: picklable callables ``factory(trials) -> Hook | None``
(module-level functions or small classes), so a group can be trained in another process
with the same hooks built there.

Hook actions. A hook changes training only by asking the loop, through its view:

* ``view.stop(m)`` (in ``on_epoch_end``): model m may stop; the group stops after the epoch
  in which every model asked;
* ``view.keep_best(m)``: model m's current state is its best; it is held (through
  checkpoints too) and put back into the model after the last epoch, before
  ``on_group_end``;
* ``view.put(m, name, value)``: a field of model m's result (``TrialResult.fields``).

A hook keeps no state of its own across an interrupt: what it needs on a resume it reads
back from ``view.history`` (every epoch record so far), as :class:`EarlyStopping` does.
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


class EarlyStopping(Hook):
    """Keras's ``EarlyStopping(monitor, patience, restore_best_weights=True)`` as hook actions:
    each model holds its state of the epoch with the lowest ``monitor`` (an epoch record's
    key, strictly lower; a non-finite value never is; before any epoch, its initial state),
    asks to stop once ``patience`` epochs passed without a new best, and gets its held state
    back at the end. Its counts come from ``view.history``, so a resumed group goes on with
    the same ones."""

    def __init__(self, monitor: str = "val_loss", patience: int = 10):
        self.monitor, self.patience = monitor, patience

    def on_group_start(self, view) -> None:
        M = view.M
        self.best, self.since = [float("inf")] * M, [0] * M
        if view.step == 0:   # a fresh group: the initial state is the best until an epoch beats it
            for m in range(M):
                view.keep_best(m)
        for m, records in enumerate(view.history):
            for rec in records:
                self._better(m, rec)

    def _better(self, m: int, rec: dict) -> bool:
        value = rec.get(self.monitor, float("nan"))
        if value < self.best[m]:   # NaN compares False: never better
            self.best[m], self.since[m] = value, 0
            return True
        self.since[m] += 1
        return False

    def on_epoch_end(self, view, epoch, metrics) -> None:
        for m, rec in enumerate(metrics):
            if self._better(m, rec):
                view.keep_best(m)
            if self.since[m] >= self.patience:
                view.stop(m)


@dataclass
class StopEarly:
    """Factory of :class:`EarlyStopping` hooks (picklable, for executors)."""

    monitor: str = "val_loss"
    patience: int = 10

    def __call__(self, trials) -> EarlyStopping:
        return EarlyStopping(self.monitor, self.patience)
