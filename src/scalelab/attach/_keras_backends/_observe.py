"""The compiled step observed from outside, whatever the backend (its ``wrap`` calls the step)."""

from __future__ import annotations

import os

import keras
import numpy as np
import torch

from ._adapter import to_torch


class StepObserver:
    """Wraps ``model.train_function`` until :meth:`remove`. Per step: :meth:`due` (probes
    at this step, or the probe batch still to be taken); if so, :meth:`flush`, :meth:`before` with
    the batch (probes before the update, the batch's gradient), the step, :meth:`after` with
    Keras's loss tracker (its running total and count: their increase is this batch's loss times
    its size, and its size); if not, only the step, its running mean loss kept in ``pending``
    for :meth:`flush`."""

    def __init__(self, model, session, part, total_steps: int, steps_per_epoch: int, probe_data,
                 epochs: int | None = None, fit_steps_per_epoch: int | None = None):
        self.model, self.s, self.part = model, session, part
        self.epochs, self.fit_steps_per_epoch = epochs, fit_steps_per_epoch
        self.total_steps, self.steps_per_epoch, self.probe_data = total_steps, steps_per_epoch, probe_data
        self.tracked = (0.0, 0.0)
        # steps with nothing due: their loss tracker's running mean (Keras's step returns it), read at flush
        # for the first that is not finite (divergence); their losses are not needed one by one (the epoch's
        # loss is Keras's own): no read, copy or wait per step (on JAX the next step reuses the tracker's
        # buffers, a copy of them cost ~40 us a step; on TensorFlow reading them, as many)
        self.pending: list = []
        self.original = model.train_function
        if getattr(model, "steps_per_execution", 1) != 1:
            print(f"scalelab: not probed: {model.name} (steps_per_execution={model.steps_per_execution}: Keras runs "
                  "several steps in one compiled call; compile with steps_per_execution=1 to probe them)")
            self.original = None
            return
        try:
            model.train_function = part.wrap(self.original, self)
            object.__setattr__(model, "_scalelab_observer", self)   # a fit that raised is unwrapped by the next
        except Exception as e:   # noqa: BLE001 - a Keras whose step cannot be observed: training as it is
            print(f"scalelab: not probed: {model.name} (its compiled step cannot be observed: {type(e).__name__}: {e})")
            self.original = None

    def remove(self) -> None:
        self.flush()
        if self.original is not None:
            self.model.train_function = self.original
            self.original = None
        if self.model.__dict__.get("_scalelab_observer") is self:
            object.__delattr__(self.model, "_scalelab_observer")

    def due(self) -> bool:
        s = self.s
        if s.view is None:
            return not self.stopped
        step = s.step + len(self.pending)   # the step about to run: those ended and those whose losses wait
        # steps 0, 1, 2, 4, ...: the session records the gradients' sizes there (the one-run rules)
        return (s.probe_set is not None and step in s.probe_set.due) or (not self.stopped and step & (step - 1) == 0)

    def flush(self) -> None:
        """The steps since the last probed one (before a probed step, at an epoch's end). Nothing was due
        at those steps (no probe, no gradient sizes): the session takes their number and the first whose
        loss was not finite, in one call (their losses are in Keras's epoch loss, see ``pending``)."""
        pending, self.pending = self.pending, []
        if pending:
            self.contained("after the step", self._steps_end, pending)

    def _steps_end(self, means) -> None:
        if self.s.view is not None:   # else the probes could not start
            self.s.steps_end(len(means), first_not_finite(means))

    def keep(self, logs) -> None:
        """A step with nothing due: its running mean loss (an output of Keras's step: never reused by the
        next, so no copy; read at :meth:`flush`)."""
        self.pending.append(logs.get("loss"))

    def running(self, total, count) -> None:
        """The loss tracker's total and count before a probed step: its batch's loss is their increase."""
        self.tracked = (float(np.asarray(total)), float(np.asarray(count)))

    stopped = False

    def contained(self, what: str, fn, *args) -> None:
        """A failure in the probes stops them (one "not probed" line; the batch losses are still
        recorded), never the user's step."""
        try:
            fn(*args)
        except Exception as e:   # noqa: BLE001 - whatever a probe raises, training goes on unchanged
            self.s.probe_set = None
            if not self.stopped:
                step = self.s.view.step if self.s.view is not None else 0
                self.s.a.skipped.append(("probes", f"stopped at step {step}, {what}: {type(e).__name__}: {e}"))
            self.stopped = True

    def probing(self, what: str, fn, *args) -> None:
        """:meth:`contained`, with torch on one thread on a small machine (up to 4 cores): the backend's own
        threads take the cores, and torch's OpenMP pool beside them oversubscribes them and spins after each
        op (on 2 cores the adam_eps probe's selection took 5x longer on two threads than on one); the probes'
        tensors are small (a probe batch). Not measured on larger machines: left as the user set it there."""
        threads = torch.get_num_threads()
        if threads > 1 and (os.cpu_count() or 1) <= 4:
            torch.set_num_threads(1)
        try:
            self.contained(what, fn, *args)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def before(self, data) -> None:
        self.probing("before the step", self._before, data)

    def _before(self, data) -> None:
        s = self.s
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        s.guard.call("the labels", s.observe, to_torch(y) if y is not None else None,
                     None if sw is None else to_torch(sw))
        if s.view is None:
            if isinstance(x, (list, tuple, dict)) and self.probe_data is None:   # as on torch: one line, not a failure
                s.guard.note("the probes", f"the model takes {len(x)} inputs; the probes feed one")
                self.stopped = True
                return s.step_start()
            model = self.model
            if not model.built or (model.optimizer is not None and not model.optimizer.built):
                # TensorFlow builds the model when it first traces the step; the probes of step 0 need it
                # now: Keras's own build from this batch's shapes (as its JAX and torch trainers build
                # before fit's first step; the initial weights do not depend on when they are built)
                model._symbolic_build(data_batch=data)
            s.a.bind()
            if self.probe_data is None:
                s.offer_batch(to_torch(x), to_torch(y))
            s.start(self.total_steps, self.steps_per_epoch, self.probe_data)
            if s.desc is not None:   # what fit was asked for (the checks and `scalelab show` read it)
                s.desc.epochs, s.desc.steps_per_epoch = self.epochs, self.fit_steps_per_epoch
                s.desc.batch_size = int(len(y)) if y is not None else None
        s.step_start()
        if self._gradients_due():
            s.a.record_gradients(data)

    def _gradients_due(self) -> bool:
        ps, step = self.s.probe_set, self.s.step
        if step & (step - 1) == 0 and "gradient sizes" not in self.s.guard.off:   # steps 0, 1, 2, 4, ...: the session records the gradients' sizes there
            return True
        return ps is not None and any(p.name == "gradients" and step in ps.due_by_probe[id(p)] for p in ps.applicable)

    def after(self, total: float, count: float) -> None:
        self.probing("after the step", self._after, total, count)

    def _after(self, total: float, count: float) -> None:
        if self.s.view is None:   # the probes could not start
            return
        self.s.step_end(*self._batch_loss(total, count))
        self.s.a.forget_gradients()

    def _batch_loss(self, total: float, count: float) -> tuple[float, int]:
        """This batch's loss and size from the loss tracker's running total and count."""
        t0, c0 = self.tracked if count > self.tracked[1] else (0.0, 0.0)   # the metrics were reset
        self.tracked = (total, count)
        n = count - c0
        return (total - t0) / n if n else float("nan"), int(round(n))


def first_not_finite(means: list) -> int | None:
    """The position of the first running mean loss that is not finite, or None. A running mean is not
    finite from the first batch whose loss is not (a running sum stays so; Keras resets it only between
    epochs, and these means never span two): the last one is read, and only where it is not finite a
    bisection finds the first. Reading each one (a backend array to numpy, ~0.1 ms) cost 5 ms a probed
    step on JAX."""
    known = [i for i, m in enumerate(means) if m is not None]

    def finite(j: int) -> bool:
        return bool(np.isfinite(np.asarray(means[known[j]])).all())

    if not known or finite(len(known) - 1):
        return None
    lo, hi = 0, len(known) - 1   # the last is not finite: the first that is not lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if finite(mid) else (lo, mid)
    return known[lo]
