"""Verifying a watched Keras run: the user's model repeated on copies, for the same epochs and
batch size, on the data the callback saw, once as it was and once per cause with the cause's
remedy, across seeds (issue 32).

The copies are ``keras.models.clone_model`` (fresh weights from the layers' own initializers,
one seed each) compiled with the user's own compile arguments (``get_compile_config``: the same
loss and a fresh optimizer of the same class and settings). The seeds of an arm are stacked:
one functional model holds every seed's copy side by side on the same input, its loss the sum
of theirs, so one ``fit`` trains them all; each copy's gradient is its own loss's (the sum
adds nothing across copies) and Adam, SGD and RMSprop update each weight from its own gradient,
so each copy trains as it would alone, except that all copies see the same batch order (the
seeds differ in their initial weights). A global gradient-norm clip would couple them: such an
optimizer trains one copy at a time. The user's model, optimizer and arrays are never touched;
the random state of Python, numpy and torch is restored afterwards.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np

import keras

from .._remedies import ZERO_GRADIENT_WRONG
from ._verify_watched import (TARGETS_CHANGED, changed_data, data_facts, final_scores, is_classification, remedies,
                              store_verification, summary)

EPS = 1e-7   # Keras's backend epsilon: the clip of a probability cross-entropy


def _clone(model, remedy, desc: dict, seed: int):
    keras.utils.set_random_seed(seed)
    what = (remedy.change.get("what") if remedy is not None else None)
    last = model.layers[-1].name if model.layers else None

    def clone_layer(layer):
        cfg = layer.get_config()
        # a name of its own: Keras's optimizer keys its state by variable path, so copies whose
        # layers shared names would share Adam's moments
        cfg["name"] = f"{cfg.get('name', layer.name)}_seed{seed}"
        if isinstance(layer, keras.layers.Dense):
            if what == "hidden_relu" and layer.name != last and cfg.get("activation") in ("linear", None):
                cfg["activation"] = "relu"
            if what in ("hidden_relu",) and layer.name != last and cfg.get("activation") in ("sigmoid", "tanh"):
                cfg["activation"] = "relu"
            if what == "default_init":
                cfg["kernel_initializer"], cfg["bias_initializer"] = "glorot_uniform", "zeros"
            if what == "output_for_loss" and layer.name == last:
                cfg["activation"] = _output_activation(desc, cfg)
        if what == "unfreeze":
            cfg["trainable"] = True
        return layer.__class__.from_config(cfg)

    c = keras.models.clone_model(model, clone_function=clone_layer)
    c.name = f"scalelab_copy_{seed}"
    if what == "unfreeze":
        c.trainable = True
        for layer in c.layers:
            layer.trainable = True
    return c


def _output_activation(desc: dict, cfg: dict) -> str:
    """The output activation the compiled loss expects (what output_for_loss changes)."""
    loss, logits = desc.get("loss", ""), desc.get("from_logits", False)
    if logits:
        return "linear"
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        return "softmax"
    if loss == "binary_crossentropy":
        return "sigmoid"
    return "linear"


def _optimizer(model, remedy):
    cfg = dict(model.optimizer.get_config())
    if remedy is not None and remedy.change.get("what") == "lr":
        cfg["learning_rate"] = float(remedy.change["lr"])
    return type(model.optimizer).from_config(cfg), cfg


def _signal_share(probs: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose true-class probability is below the clip (a misclassified sample
    with an exactly zero gradient of the clipped cross-entropy)."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        return math.nan
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-300)
    yy = np.asarray(y)
    pt = (p * yy).sum(1) if yy.ndim == 2 and yy.shape[1] == p.shape[1] else p[np.arange(len(p)), yy.reshape(-1).astype(int)]
    return float(np.mean(pt < EPS))


class _Signal(keras.callbacks.Callback):
    def __init__(self, x, y, spe):
        super().__init__()
        self.x, self.y, self.spe, self.rows = x, y, spe, None

    def _probe(self, step):
        out = self.model.predict(self.x, verbose=0, batch_size=len(self.x))
        out = out if isinstance(out, list) else [out]
        for k, o in enumerate(out):
            self.rows[k].append((step, _signal_share(o, self.y)))

    def on_train_begin(self, logs=None):
        self.rows = [[] for _ in self.model.outputs]
        self._probe(0)

    def on_epoch_end(self, epoch, logs=None):
        self._probe((epoch + 1) * self.spe)


def run_arm(model, x, y, remedy, seeds: list[int], epochs: int, batch_size: int, desc: dict, signal: bool,
            shuffle: bool = True) -> list[dict]:
    """One arm (``remedy`` None: the run as it was): per seed, its epochs, signal and status."""
    xa, ya, undo = changed_data(remedy, x, y) if remedy is not None else (np.array(x, copy=True),
                                                                         np.array(y, copy=True), {})
    if remedy is not None and remedy.change.get("what") == "shuffle":
        shuffle = True
    config = model.get_compile_config() or {}
    _, ocfg = _optimizer(model, remedy)
    stack = 1 if ocfg.get("global_clipnorm") else len(seeds)
    spe = math.ceil(len(xa) / batch_size)
    out = []
    for i in range(0, len(seeds), stack):
        chunk = seeds[i:i + stack]
        t0 = time.perf_counter()
        inp = keras.Input(shape=xa.shape[1:])
        copies = [_clone(model, remedy, desc, s) for s in chunk]
        outs = [keras.layers.Identity(name=f"seed_{s}")(c(inp)) for s, c in zip(chunk, copies)]
        stacked = keras.Model(inp, outs)
        opt, _ = _optimizer(model, remedy)
        stacked.compile(optimizer=opt, loss=[config.get("loss") or model.loss] * len(chunk))
        cbs = [_Signal(xa[:512], ya[:512], spe)] if signal else []
        h = stacked.fit(xa, [ya] * len(chunk), epochs=epochs, batch_size=batch_size, shuffle=shuffle, verbose=0,
                        callbacks=cbs).history
        preds = stacked.predict(xa, verbose=0, batch_size=max(batch_size, 256))
        preds = preds if isinstance(preds, list) else [preds]
        wall = (time.perf_counter() - t0) / len(chunk)
        for k, s in enumerate(chunk):
            losses = h.get(f"seed_{s}_loss") or (h["loss"] if len(chunk) == 1 else [])
            epochs_rows = [{"epoch": e + 1, "train_loss": float(v)} for e, v in enumerate(losses)]
            final_scores(epochs_rows[-1] if epochs_rows else {}, preds[k], y, undo, desc)
            finite = all(math.isfinite(r["train_loss"]) for r in epochs_rows)
            out.append(dict(seed=s, epochs=epochs_rows, signal=cbs[0].rows[k] if cbs else [], wall_s=wall,
                            status="done" if finite else "diverged",
                            diverged_step=None if finite else spe * next(
                                e for e, r in enumerate(epochs_rows) if not math.isfinite(r["train_loss"]))))
    return out


def verify_keras(model, x, y, findings, *, study: str, db: str, level: dict, seeds: int, epochs: int,
                 batch_size: int, desc: dict | None, verbose: bool = True) -> list:
    """Verify each cause of a watched Keras run on copies; store it; print what it measured.
    Returns the remedies that were run as [(finding, Remedy)]."""
    desc = desc or {}
    x, y = np.asarray(x), np.asarray(y)
    todo, skipped = remedies(findings, data_facts(x, y, is_classification(y, desc)), desc)
    if not todo:
        if verbose:
            print(f"scalelab: verify {study}: no cause with a remedy to run"
                  + "".join(f"\n- [{f.id}] not verified: {why}" for f, why in skipped))
        return []
    state = _rng_state()
    t0 = time.perf_counter()
    try:
        sorted_labels = any(f.id == "sorted-labels" for f in findings)
        seed_list = list(range(seeds))
        signal = any(r.signal == ZERO_GRADIENT_WRONG for _, r in todo)
        before = run_arm(model, x, y, None, seed_list, epochs, batch_size, desc, signal, shuffle=not sorted_labels)
        arms = []
        for f, r in todo:
            after = run_arm(model, x, y, r, seed_list, epochs, batch_size, desc, r.signal == ZERO_GRADIENT_WRONG,
                            shuffle=not sorted_labels)
            arms.append(dict(finding=f.id, remedy=r.words, change=r.change, before=before, after=after,
                             signal=list(r.signal) if r.signal else None,
                             loss_changed=r.change.get("what") in TARGETS_CHANGED))
    finally:
        _restore(state)
    store_verification(db, study, level, "keras", arms, time.perf_counter() - t0)
    if verbose:
        print(summary(db, study) + "".join(f"\n- [{f.id}] not verified: {why}" for f, why in skipped))
    return todo


def _rng_state():
    state = [random.getstate(), np.random.get_state()]
    try:
        import torch

        state.append(torch.get_rng_state())
    except ImportError:
        state.append(None)
    return state


def _restore(state) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])
    if state[2] is not None:
        import torch

        torch.set_rng_state(state[2])
