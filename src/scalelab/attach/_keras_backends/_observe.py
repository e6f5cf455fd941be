"""The compiled step observed from outside, whatever the backend (its ``wrap`` calls the step)."""

from __future__ import annotations

import keras

from ._adapter import to_torch


class StepObserver:
    """Wraps ``model.train_function`` until :meth:`remove`. Per step: :meth:`due` (probes
    at this step, or the probe batch still to be taken), then :meth:`before` with the batch
    (probes before the update, the batch's gradient) or :meth:`skip_step`, then the step, then
    :meth:`after` with Keras's loss tracker (its running total and count: their increase is
    this batch's loss times its size, and its size)."""

    def __init__(self, model, session, part, total_steps: int, steps_per_epoch: int, probe_data):
        self.model, self.s, self.part = model, session, part
        self.total_steps, self.steps_per_epoch, self.probe_data = total_steps, steps_per_epoch, probe_data
        self.tracked = (0.0, 0.0)
        self.original = model.train_function
        if getattr(model, "steps_per_execution", 1) != 1:
            print(f"scalelab: not probed: {model.name} (steps_per_execution={model.steps_per_execution}: Keras runs "
                  "several steps in one compiled call; compile with steps_per_execution=1 to probe them)")
            self.original = None
            return
        model.train_function = part.wrap(self.original, self)

    def remove(self) -> None:
        if self.original is not None:
            self.model.train_function = self.original
            self.original = None

    def due(self) -> bool:
        s = self.s
        return s.view is None or (s.probe_set is not None and s.view.step in s.probe_set.due)

    def skip_step(self) -> None:
        self.s.step_start()

    def before(self, data) -> None:
        s = self.s
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if s.view is None:
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
        s.step_start()
        if self._gradients_due():
            s.a.record_gradients(data)

    def _gradients_due(self) -> bool:
        ps, step = self.s.probe_set, self.s.view.step
        return ps is not None and any(p.name == "gradients" and step in ps.due_by_probe[id(p)] for p in ps.applicable)

    def after(self, total: float, count: float) -> None:
        t0, c0 = self.tracked if count > self.tracked[1] else (0.0, 0.0)   # the metrics are reset each epoch
        self.tracked = (total, count)
        n = count - c0
        self.s.step_end((total - t0) / n if n else float("nan"), int(round(n)))
        self.s.a.forget_gradients()
