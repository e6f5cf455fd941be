"""``scalelab.keras.study``: the user's own Keras model over the factors they name, across
seeds, stored and explained like any study (issue 32).

Each run is a copy: ``keras.models.clone_model`` (fresh weights from the layers' own
initializers under the run's seed; the output layer's activation changed where the level
says), compiled with the user's own compile arguments (``get_compile_config``: a fresh
optimizer of the same class and settings, the same loss and metrics) with the level's
changes, trained by ``fit`` on a copy of the data (rescaled where the level says) with
:class:`~scalelab.keras.Diagnose` attached, so every run's probes and findings are stored as
a watched run's, one trial per level and seed. The user's model, optimizer and arrays are
never touched; the random state of Python, numpy and torch is restored afterwards.
"""

from __future__ import annotations

import numpy as np

import keras

from ._keras import Diagnose
from ._session import validate
from ._study_plan import factor_levels, number, original, report, seeds_to_run
from ._verify_keras import _restore, _rng_state

_KERAS_OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}


def _clone(model, level: dict, seed: int):
    keras.utils.set_random_seed(seed)
    last = model.layers[-1].name if model.layers else None

    def clone_layer(layer):
        cfg = layer.get_config()
        if "output_activation" in level and layer.name == last and "activation" in cfg:
            cfg["activation"] = level["output_activation"] or "linear"
        return layer.__class__.from_config(cfg)

    if "output_activation" in level and (not model.layers or "activation" not in model.layers[-1].get_config()):
        raise ValueError(f"vary['output_activation']: the model's last layer ({last!r}) has no activation to change")
    return keras.models.clone_model(model, clone_function=clone_layer)


def _optimizer(model, level: dict):
    """A fresh optimizer: the user's class and settings, or the level's class at the user's
    learning rate; the level's learning rate where it names one."""
    cfg = dict(model.optimizer.get_config())
    lr = number(level["optim.lr"]) if "optim.lr" in level else float(
        np.asarray(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    name = level.get("optim.name")
    if name is None:
        cfg["learning_rate"] = lr
        return type(model.optimizer).from_config(cfg)
    cls = getattr(keras.optimizers, _KERAS_OPTIMIZERS[name.lower()])
    return cls(learning_rate=lr, **({"momentum": 0.9} if name.lower() == "momentum" else {}))


def study(model, x, y, *, vary: dict, name: str, seeds: int = 5, epochs: int = 5, batch_size: int = 32,
          db: str = "scalelab.db", probes: str = "cheap", validation_data=None, verbose: bool = True) -> list:
    """Train copies of ``model`` (compiled) on ``x``, ``y`` over every combination of the
    factors in ``vary``, ``seeds`` seeds each, store them as study ``name`` in ``db`` and
    return (and print) its findings::

        scalelab.keras.study(model, x, y, vary={"input.scale": ["1", "1/255"], "lr": [1e-3, 1e-4]},
                             seeds=5, epochs=5, name="mine")

    Factors: ``input.scale`` (x multiplied by it: ``"1/255"``), ``lr``, ``optimizer`` (sgd,
    momentum, adam, adamw, rmsprop; at your learning rate unless ``lr`` varies too),
    ``output_activation`` (the last layer's), ``loss`` (a Keras loss name or object),
    ``batch_size``. A rerun resumes: the levels and seeds already stored are not trained again.
    ``scalelab show NAME`` and ``scalelab explain NAME`` read the study."""
    validate(name, probes)
    if getattr(model, "optimizer", None) is None or not model.compiled:
        raise ValueError("study: compile the model first (model.compile(optimizer=..., loss=...)): its compile "
                         "arguments are what each copy is compiled with")
    levels = factor_levels(vary)
    config = model.get_compile_config() or {}
    x, y = np.asarray(x), np.asarray(y)
    todo = seeds_to_run(db, name, levels, seeds)
    state = _rng_state()
    try:
        for level, seed in todo:
            scale = number(level["input.scale"]) if "input.scale" in level else None
            xs = x.astype(np.float32) * np.float32(scale) if scale is not None else np.array(x, copy=True)
            val = None
            if validation_data is not None:
                vx, vy = (np.asarray(a) for a in validation_data[:2])
                val = (vx.astype(np.float32) * np.float32(scale) if scale is not None else vx.copy(), vy.copy())
            copy = _clone(model, level, seed)
            copy.compile(optimizer=_optimizer(model, level),
                         loss=original(level, vary, "loss") if "loss" in level else config.get("loss") or model.loss,
                         metrics=config.get("metrics"))
            if verbose:
                print(f"scalelab: {name}: {level} seed {seed}", flush=True)
            copy.fit(xs, np.array(y, copy=True), epochs=epochs, batch_size=level.get("train.batch_size", batch_size),
                     validation_data=val, verbose=0,
                     callbacks=[Diagnose(name, db=db, probes=probes, level=level, seed=seed, verbose=False)])
    finally:
        _restore(state)
    return report(db, name, verbose)
