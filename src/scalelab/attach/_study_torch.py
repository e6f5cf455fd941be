"""``scalelab.torch_study``: the user's own PyTorch model over the factors they name, across
seeds, stored and explained like any study (issue 32); the twin of ``scalelab.keras.study``.

Each run is a copy (``copy.deepcopy`` of the model and loss module) re-initialized under the
run's seed by each layer's own ``reset_parameters`` (as Keras's ``clone_model`` draws fresh
weights; ``reinit=False`` keeps the user's initial weights, and the seeds differ in batch
order only), with a fresh optimizer of the user's class and hyperparameters (or the level's),
trained by the standard loop (zero_grad, forward, loss, backward, step) on a copy of the data
under :func:`scalelab.watch`, so every run's probes and findings are stored as a watched
run's, one trial per level and seed. The user's model, loss, optimizer and tensors are never
touched; torch's random state is restored afterwards.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ._session import validate
from ._study_plan import factor_levels, number, original, report, seeds_to_run
from ._torch_watch import Watcher
from ._verify_torch import _optimizer as same_optimizer

_TORCH_OPTIMIZERS = {"sgd": (torch.optim.SGD, {}), "momentum": (torch.optim.SGD, {"momentum": 0.9}),
                     "adam": (torch.optim.Adam, {}), "adamw": (torch.optim.AdamW, {}),
                     "rmsprop": (torch.optim.RMSprop, {})}
_ACTIVATIONS = {"softmax": lambda: nn.Softmax(dim=1), "log_softmax": lambda: nn.LogSoftmax(dim=1),
                "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "linear": None, None: None}
_LOSSES = {"mse": nn.MSELoss, "cross_entropy": nn.CrossEntropyLoss, "nll": nn.NLLLoss, "bce": nn.BCELoss,
           "bce_with_logits": nn.BCEWithLogitsLoss, "l1": nn.L1Loss}


def _copy(model: nn.Module, level: dict, seed: int, reinit: bool) -> nn.Module:
    m = copy.deepcopy(model)
    if reinit:
        torch.manual_seed(seed)
        for mod in m.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    if "output_activation" in level:
        act = level["output_activation"]
        if act not in _ACTIVATIONS:
            raise ValueError(f"vary['output_activation']: {act!r} is not one of "
                             f"{', '.join(str(a) for a in _ACTIVATIONS if a)}, or None")
        if not isinstance(m, nn.Sequential):
            raise ValueError("vary['output_activation']: the model is not an nn.Sequential, so scalelab cannot "
                             "change its output layer on a copy; vary it in your model class instead")
        mods = list(m)
        if mods and isinstance(mods[-1], (nn.Softmax, nn.LogSoftmax, nn.Sigmoid, nn.Tanh, nn.ReLU)):
            mods = mods[:-1]
        make = _ACTIVATIONS[act]
        m = nn.Sequential(*mods, *([make()] if make is not None else []))
    return m


def _loss(loss_fn, level: dict, vary: dict):
    if "loss" not in level:
        return copy.deepcopy(loss_fn) if isinstance(loss_fn, nn.Module) else loss_fn
    v = original(level, vary, "loss")
    if isinstance(v, str):
        if v not in _LOSSES:
            raise ValueError(f"vary['loss']: {v!r} is not one of {', '.join(_LOSSES)} (or pass a loss module)")
        return _LOSSES[v]()
    return copy.deepcopy(v) if isinstance(v, nn.Module) else v


def _optimizer(optimizer, params, level: dict):
    """The user's optimizer class and hyperparameters (an instance), or the user's factory
    called on the copy's parameters; the level's class (at the user's learning rate) or
    learning rate where it names one."""
    opt = optimizer(params) if callable(optimizer) and not isinstance(optimizer, torch.optim.Optimizer) else \
        same_optimizer(optimizer, params, None)
    lr = number(level["optim.lr"]) if "optim.lr" in level else opt.param_groups[0]["lr"]
    if "optim.name" in level:
        cls, extra = _TORCH_OPTIMIZERS[level["optim.name"].lower()]
        return cls(params, lr=lr, **extra)
    for g in opt.param_groups:
        g["lr"] = lr
    return opt


def _tensor(a: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(a))
    return t.float() if t.dtype == torch.float64 else t


def torch_study(model, loss_fn, optimizer, x, y, *, vary: dict, name: str, seeds: int = 5, epochs: int = 5,
                batch_size: int = 32, db: str = "scalelab.db", probes: str = "cheap", reinit: bool = True,
                verbose: bool = True) -> list:
    """Train copies of ``model`` with ``loss_fn`` and ``optimizer`` (an optimizer instance,
    whose class and hyperparameters each copy gets afresh, or a function of the parameters
    returning one) on ``x``, ``y`` (arrays or tensors) over every combination of the factors
    in ``vary``, ``seeds`` seeds each; store them as study ``name`` in ``db`` and return (and
    print) its findings::

        scalelab.torch_study(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()), X, y,
                             vary={"input.scale": ["1", "1/255"], "lr": [1e-3, 1e-2]}, seeds=5, name="mine")

    Factors: ``input.scale``, ``lr``, ``optimizer`` (sgd, momentum, adam, adamw, rmsprop),
    ``output_activation`` (an ``nn.Sequential``'s last: softmax, log_softmax, sigmoid, tanh,
    relu, None), ``loss`` (mse, cross_entropy, nll, bce, bce_with_logits, l1, or a loss
    module), ``batch_size``. A rerun resumes: the levels and seeds already stored are not
    trained again. ``scalelab show NAME`` and ``scalelab explain NAME`` read the study."""
    validate(name, probes)
    levels = factor_levels(vary)
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    todo = seeds_to_run(db, name, levels, seeds)
    state = torch.get_rng_state()
    try:
        for level, seed in todo:
            xs = x.astype(np.float32) * np.float32(number(level["input.scale"])) if "input.scale" in level else x
            xt, yt = _tensor(xs), _tensor(y)
            m = _copy(model, level, seed, reinit)
            lf = _loss(loss_fn, level, vary)
            opt = _optimizer(optimizer, [p for p in m.parameters() if p.requires_grad], level)
            bs = level.get("train.batch_size", batch_size)
            spe = -(-len(xt) // bs)
            g = torch.Generator().manual_seed(seed)
            if verbose:
                print(f"scalelab: {name}: {level} seed {seed}", flush=True)
            m.train()
            with Watcher(m, lf, opt, study=name, db=db, probes=probes, level=level, seed=seed, epochs=epochs,
                         steps_per_epoch=spe, verbose=False):
                for _ in range(epochs):
                    order = torch.randperm(len(xt), generator=g)
                    for i in range(0, len(xt), bs):
                        idx = order[i:i + bs]
                        opt.zero_grad()
                        lf(m(xt[idx]), yt[idx]).backward()
                        opt.step()
    finally:
        torch.set_rng_state(state)
    return report(db, name, verbose)
