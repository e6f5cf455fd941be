"""``scalelab.keras.Diagnose``: the probes inside a Keras 3 ``model.fit`` (torch, TensorFlow or JAX backend).

The callback sees what Keras computes: it wraps the model's own ``train_step`` for the
length of ``fit`` (the probes that look at the model before the update run before it, the
gradient, update and optimizer-state probes after it, on the gradients Keras left on its
variables and the state of Keras's own optimizer) and its ``_compute_loss`` (the batch
loss Keras reports). The per-sample loss the probes differentiate is Keras's own loss
function on Keras's own softmax of the output layer's pre-activations, so a softmax output
with a probability loss keeps Keras's clip to [eps, 1 - eps], and its exactly zero
gradient outside it.

This file is the torch backend and what all backends share (the layers, taps, the loss);
on TensorFlow and JAX, where Keras compiles the step, ``_keras_backends`` observes the
compiled step from outside and computes through that backend (see there).
"""

from __future__ import annotations

import numpy as np
import torch

import keras

from ._guard import Guard
from ._keras_adapter import KerasAdapter
from ._session import Session, validate
from ._view import to_numpy


def _unwrap(model) -> None:   # Keras's own train_step and _compute_loss (or compiled step) back on the model
    observer = model.__dict__.get("_scalelab_observer")
    if observer is not None:
        observer.remove()
    for name in ("train_step", "_compute_loss"):
        if name in model.__dict__:
            object.__delattr__(model, name)


class Diagnose(keras.callbacks.Callback):
    """Record scalelab's probes inside ``model.fit``, store the run as a trial of study
    ``study`` (``db=``) and print its findings when training ends::

        model.fit(x, y, epochs=5, callbacks=[scalelab.keras.Diagnose(study="mine", probe_data=(x, y))])

    ``probe_data=(x, y)``: the training data (or part of it) the fixed probe batch is drawn
    from, as the built-in studies draw it (default: the first training batch); ``level``:
    what this run is (``{"input.scale": "1/255"}``), runs of one study are compared by
    level; ``probes``: none, cheap, standard or full. ``findings`` holds them after fit.

    Nothing scalelab does inside ``fit`` can break it: a failure is one "not probed" line
    (printed, and stored with the run); Keras's own step runs as without the callback."""

    def __init__(self, study: str, *, db: str = "scalelab.db", probes: str = "cheap", level: dict | None = None,
                 seed: int | None = None, probe_data=None, probe_batch: int = 512, verbose: bool = True,
                 verify: int | bool | None = None, verify_data=None):
        super().__init__()
        validate(study, probes)
        from ._verify_watched import seeds_from_env

        # verify=N: after fit, each cause's remedy on copies of the model, N seeds (SCALELAB_VERIFY=N)
        self.verify_seeds, self.verify_data, self._seen = seeds_from_env(verify), verify_data, []
        self.options = dict(study=study, db=db, probes=probes, level=level, seed=seed, probe_batch=probe_batch,
                            verbose=verbose)
        self.probe_data, self.findings, self.session, self.guard = probe_data, [], None, Guard()

    def on_train_begin(self, logs=None):
        self.guard, self.session, self.findings, self._loss = (g := Guard()), None, [], None
        self._observer = None
        m = self.model
        _unwrap(m)   # a fit that raised never reached on_train_end: its wrappers go before new ones
        g.call("scalelab's setup", self._setup)
        if self.session is None:
            return
        if self._compiled:   # TensorFlow, JAX: the compiled step is observed from outside (_keras_backends)
            from . import _keras_backends

            self._observer = g.call("observing the compiled step", _keras_backends.observe, m, self.session,
                                    self._steps, self._spe, self.probe_data, self._epochs, self._steps_per_epoch)
            return
        train_step, compute_loss = m.train_step, m._compute_loss

        def observed_loss(*args, **kwargs):
            self._loss = compute_loss(*args, **kwargs)
            return self._loss

        def observed_step(data):
            self._loss = None
            g.call("the probes before the update", self._before, data)
            out = train_step(data)            # Keras's own step, outside any guard: untouched
            g.call("the step's loss", self._after, data)
            return out

        object.__setattr__(m, "train_step", observed_step)
        object.__setattr__(m, "_compute_loss", observed_loss)

    def _setup(self) -> None:
        m = self.model
        self._compiled = keras.backend.backend() != "torch"   # TensorFlow, JAX: Keras compiles the step
        if self._compiled:
            from . import _keras_backends

            a = _keras_backends.adapter(m, self.guard.lines)
        else:
            a = KerasAdapter(m, self.guard.lines)
        epochs, steps = int(self.params.get("epochs") or 1), int(self.params.get("steps") or 0)
        o = m.optimizer
        known = {"profile": "keras",
                 "loss": ({"name": "crossentropy", "from_logits": a.from_logits, "clip": a.clip} if a.classification
                          else {"name": "mae" if "absolute" in a.loss_name else "mse"}),
                 "optim": {"name": a.optimizer_family,
                           "lr": float(np.asarray(keras.ops.convert_to_numpy(o.learning_rate)))},
                 "train": {"epochs": epochs},
                 "model": {"batchnorm": any(isinstance(l, keras.layers.BatchNormalization) for l in a.leaves)}}
        self.session = Session(a, known=known, guard=self.guard, **self.options)
        self._epochs, self._steps_per_epoch = epochs, steps or None
        self._steps = (epochs * steps) if steps else 10 ** 6
        self._spe = steps or self._steps

    def _before(self, data) -> None:
        s = self.session
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        s.observe(y, sw)
        if self.verify_seeds and self.verify_data is None and not s.epochs:   # the data the fit sees, for verify
            self._seen.append((np.array(to_numpy(x)), np.array(to_numpy(y))))
        if s.view is None and "the probe view" not in self.guard.off:
            if not isinstance(x, torch.Tensor) and self.probe_data is None:
                n = len(x) if isinstance(x, (list, tuple, dict)) else 1
                self.guard.note("the probes", f"the model takes {n} inputs; the probes feed one")
                self.guard.off.add("the probe view")
                return s.step_start()
            if self.probe_data is None:
                s.offer_batch(x, y)
            self.guard.call("the probe view", s.start, self._steps, self._spe, self.probe_data)
            if s.desc is not None:
                s.desc.epochs, s.desc.steps_per_epoch = self._epochs, self._steps_per_epoch
                s.desc.batch_size = int(len(y)) if y is not None else None
        s.step_start()

    def _after(self, data) -> None:
        _, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        loss = float("nan") if self._loss is None else float(keras.ops.convert_to_numpy(self._loss))
        self.session.step_end(loss, int(len(y)) if y is not None else 1)

    def _verify(self) -> None:
        """Each cause's remedy on copies of the model, on the data this fit saw (attach/_verify_keras)."""
        from ._verify_keras import verify_keras

        if self.verify_data is not None:
            x, y = (to_numpy(a) for a in self.verify_data)
        elif self._seen:
            x, y = np.concatenate([b[0] for b in self._seen]), np.concatenate([b[1] for b in self._seen])
        else:
            raise ValueError("verify: the callback saw no training data on this backend; pass verify_data=(x, y)")
        self._seen = []
        s, o = self.session, self.options
        desc = s.desc.as_dict() if s.desc is not None else {}
        verify_keras(self.model, x, y, self.findings, study=o["study"], db=o["db"], level=s.level,
                     seeds=self.verify_seeds, epochs=self._epochs, batch_size=(s.desc.batch_size if s.desc else None)
                     or 32, desc=desc, verbose=o["verbose"])
        return True

    def on_epoch_end(self, epoch, logs=None):
        if self.session is None:
            return
        if getattr(self, "_observer", None) is not None:   # TensorFlow, JAX: the epoch's last losses first
            self.guard.call("the step's loss", self._observer.flush)
        logs = logs or {}
        names = {"accuracy": "train_acc", "sparse_categorical_accuracy": "train_acc", "val_loss": "val_loss",
                 "val_accuracy": "val_acc", "val_sparse_categorical_accuracy": "val_acc",
                 "binary_accuracy": "train_acc", "categorical_accuracy": "train_acc"}
        metrics = {names[k]: v for k, v in logs.items() if k in names and isinstance(v, (int, float, np.floating))}
        if getattr(self, "_observer", None) is not None and isinstance(logs.get("loss"), (int, float, np.floating)):
            metrics["train_loss"] = logs["loss"]   # the observer reads the batch losses of probed steps only
        self.guard.call("the epoch's metrics", self.session.epoch_end, metrics)

    def on_train_end(self, logs=None):
        if getattr(self, "_observer", None) is not None:
            self.guard.call("restoring the compiled step", self._observer.remove)
        _unwrap(self.model)
        if self.session is not None:
            self.findings = self.session.finish() or []
            if self.verify_seeds:
                if not self.guard.call("the verification", self._verify, default=False):
                    print(f"scalelab: {self.options['study']}: not verified: "
                          f"{dict(self.guard.lines).get('the verification', 'see above')}")
        elif self.options["verbose"]:
            print("\n  ".join([f"scalelab: {self.options['study']}: nothing recorded", *self.guard.rendered()]))
