"""Planning: which trials share a stacked group, how many models per group, on which
device, whether to compile, and what a spec asks that its data cannot give."""

from __future__ import annotations

import json
import math
import os
import platform

import numpy as np
import torch

from .._spec import Trial
from ..data import Dataset, image_shape, load_dataset
from ..data._text import check_token_model
from ..optim._families import stack_key


def want_compile(setting: bool | None, n_values: int, device: torch.device) -> bool:
    """torch.compile the training step? ``train.compile`` decides when set; else the
    SCALELAB_COMPILE variable (0/1); else only where the run's work (parameter values ×
    steps) repays the compile. Measured on a 2-core CPU for the 784-128-10 MLP at 15 models:
    compiling costs 10 s with an empty cache (2 s once cached) and saves 7.9 ms of an
    11.1 ms eager step, about 5 ns per parameter value and step; 1e9 values (6 models for
    one Fashion-MNIST epoch) is where even a first compile breaks even."""
    if setting is not None:
        return setting
    env = os.environ.get("SCALELAB_COMPILE")
    if env in ("0", "1"):
        return env == "1"
    return n_values >= 1e9


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device = {name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return dev


def environment(device: str) -> dict:
    """What a trial ran on: versions, device and threads, stored with every trial."""
    from .. import __version__

    dev = resolve_device(device)
    env = dict(scalelab=__version__, python=platform.python_version(), torch=torch.__version__,
               numpy=np.__version__, platform=platform.platform(), device=str(dev),
               threads=torch.get_num_threads(), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))
    if dev.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(dev)
    return env


# Spec keys that change the *shape* or the code of the computation: trials agreeing on
# all of them can share a stacked group. Everything else (seed, input transform, init,
# lr, eps, betas, momentum, decay, clip, ...) varies per model inside a group.
_SHAPE_KEYS = ("kind", "hidden", "conv", "kernel", "batchnorm", "bn_momentum", "bn_eps", "activation", "layers")


def group_key(trial: Trial) -> str:
    s = trial.spec
    o = s.optim
    shape = dict(data=s.data.model_dump(), features=s.input.features,  # extra columns change the input width
                 model={k: getattr(s.model, k) for k in _SHAPE_KEYS},
                 loss=(s.loss.name, s.loss.from_logits),
                 optim=(stack_key(o.name), o.nesterov),
                 l2=o.l2 > 0, train=s.train.model_dump(),  # a penalty term changes the computed graph
                 probes=s.probes.model_dump())
    if getattr(s, "trajectory", None) is not None:   # generator and head sizes change the computation
        shape["trajectory"] = s.trajectory.model_dump()
    if s.cv is not None:   # a fold's rows (and its PCA width) differ from another fold's
        shape["cv"] = s.cv.model_dump()
    return json.dumps(shape, sort_keys=True, default=str)


def auto_group_size(n_params: int, n_features: int, batch: int, device: torch.device) -> int:
    """Models per stacked group: on CPU past ~32 models per group the matmuls are already
    large enough; on a GPU, as many as memory comfortably holds."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return gpu_group_size(free, n_params, n_features, batch)
    return 32


def gpu_group_size(free_bytes: int, n_params: int, n_features: int, batch: int) -> int:
    """Models per group on a GPU with ``free_bytes`` free: half of it for the models, each
    taking ~6 float32 copies of its parameters (parameters, gradients, two moments, two
    temporaries) and 4 of its batch's inputs; 1 to 4096 models."""
    per_model = 4 * (6 * n_params + 4 * batch * n_features)
    return int(max(1, min(4096, 0.5 * free_bytes // per_model)))


def default_group_size(trial: Trial, data_dir: str | None = None, device: str | None = None) -> int:
    """The spec's ``train.group_size``, else :func:`auto_group_size` for its device and shapes."""
    s = trial.spec
    if s.train.group_size:
        return s.train.group_size
    dev = resolve_device(device or s.train.device)
    n_features = load_dataset(s.data, data_dir, getattr(s, "trajectory", None)).n_features
    sizes = [n_features, *s.model.hidden, 10]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return auto_group_size(n_params, n_features, s.train.batch_size, dev)


def plan_groups(trials: list[Trial], max_size: int | None = None, data_dir: str | None = None,
                device: str | None = None) -> list[list[Trial]]:
    """Partition trials into groups that share a group key, each at most ``max_size``
    (balanced: 15 trials with size 8 become 8 + 7)."""
    by_key: dict[str, list[Trial]] = {}
    for t in trials:
        by_key.setdefault(group_key(t), []).append(t)
    groups = []
    for members in by_key.values():
        size = max_size or default_group_size(members[0], data_dir, device)
        n = math.ceil(len(members) / size)
        per = math.ceil(len(members) / n)
        groups += [members[i: i + per] for i in range(0, len(members), per)]
    return groups


def check_trial(spec, ds: Dataset) -> None:
    """What a spec asks that its data set cannot give: one actionable ValueError."""
    classification = ds.task == "classification"
    loss = spec.loss.name
    if classification != (loss == "crossentropy"):
        raise ValueError(f"loss.name = {loss!r} does not fit the {ds.task} data set {ds.name!r}; use "
                         f"{'crossentropy' if classification else 'mse or mae'}")
    if classification and spec.target.transform != "none":
        raise ValueError(f"target.transform applies to regression targets; {ds.name!r} is a classification task "
                         f"(leave target.transform = 'none')")
    if spec.train.keep == "best" and not spec.data.validation:
        raise ValueError("train.keep = 'best' keeps the epoch with the best validation metric, but data.validation = 0 "
                         "holds no validation set; set data.validation (e.g. 0.1) or train.keep = 'final'")
    check_token_model(spec, ds)
    if spec.model.kind == "trajectory" or ds.name == "trajectories":
        from ..trajectories._check import check_spec

        check_spec(spec, ds)
    if spec.model.kind == "fcn" and not image_shape(ds):
        raise ValueError(f"model.kind = 'fcn' needs image-shaped inputs; data set {ds.name!r} has none")


def check_trials(trials: list[Trial], data_dir: str | None = None, seen: set | None = None) -> None:
    """:func:`check_trial` for each distinct setup, before anything trains (``seen``: setups
    already checked, for callers that check a stream of trials in pieces)."""
    seen = set() if seen is None else seen
    for t in trials:
        s = t.spec
        key = json.dumps([s.data.model_dump(), s.loss.name, s.target.transform, s.model.kind, s.train.keep,
                          *([s.trajectory.model_dump()] if getattr(s, "trajectory", None) else [])], sort_keys=True,
                         default=str)
        if key not in seen:
            seen.add(key)
            check_trial(s, load_dataset(s.data, data_dir, getattr(s, "trajectory", None)))
