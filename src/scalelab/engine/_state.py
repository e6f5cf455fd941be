"""The pieces of a stacked group's state, each built by its own small function: data on the
device, fitted input and target transforms, parameters, hyperparameters and the optimizer."""

from __future__ import annotations

import numpy as np
import torch

from .. import _equivalence
from .. import optim as _optim
from .._spec import Trial
from ..models import Model, stack_params


def to_device(X: np.ndarray, y: np.ndarray, classification: bool, dtype, device):
    """Inputs stay uint8 when they are (converted per batch); float inputs and regression
    targets in the group's dtype; class labels as int64."""
    from ._resident import upload   # on a GPU, shared by the groups of a process

    yt = upload(y, device, None if classification else dtype)
    if X.dtype.kind in "iu" and X.dtype != np.uint8:   # token ids: exact int64, never cast to float
        return torch.as_tensor(X, dtype=torch.int64).to(device), yt
    Xt = upload(X, device) if X.dtype == np.uint8 else upload(X, device, dtype, via_float64=True)
    return Xt, yt


def fit_input_transforms(trials: list[Trial], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's input transform fitted on the training inputs: scale_, offset_ of shape (M, D)."""
    cache: dict[str, tuple] = {}
    scales, offsets = [], []
    for t in trials:
        inp = t.spec.input
        key = repr(sorted(inp.model_dump().items()))
        if key not in cache:
            tf = inp.make_transform()
            # "none" and "scale" learn nothing from the data
            tf.fit(X[:1] if inp.transform in ("none", "scale") else X)
            cache[key] = (tf.scale_, tf.offset_)
        scales.append(cache[key][0])
        offsets.append(cache[key][1])
    return np.stack(scales), np.stack(offsets)


def fit_target_transforms(trials: list[Trial], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's target transform fitted on the training targets: scale_, offset_ of shape (M, T)."""
    out_s, out_o = [], []
    for t in trials:
        tg = t.spec.target
        tf = tg.make_transform().fit(y)
        out_s.append(tf.scale_)
        out_o.append(tf.offset_)
    return np.stack(out_s), np.stack(out_o)


def input_affine(scale: np.ndarray, offset: np.ndarray, dtype, device):
    """(in_scale, in_offset) tensors. A per-model scalar scale with no offset (the common
    "divide by 255") is one multiply by an (M, 1, 1) tensor; only a per-feature transform
    needs (M, 1, D) and an offset."""
    if np.all(offset == 0) and np.all(scale == scale[:, :1]):
        return torch.as_tensor(scale[:, :1, None], dtype=dtype, device=device), None
    return (torch.as_tensor(scale[:, None, :], dtype=dtype, device=device),
            torch.as_tensor(offset[:, None, :], dtype=dtype, device=device))


def init_params(trials: list[Trial], model: Model, eq: list, dtype, device,
                transposed_kernels: bool) -> dict[str, torch.Tensor]:
    """Every model's initial parameters, drawn from its own seed, stacked. ``eq``: each
    trial's input.equivalent_to parametrization (or None), which rescales the first kernel."""
    per_model = [model.init(t.seed, t.spec.model.init, t.spec.model.init_scale, t.spec.model.bias_init)
                 for t in trials]
    W1 = model.weighted[0].weight
    for p, e in zip(per_model, eq):
        if e is not None:
            p[W1] = p[W1] * e.init_scale
    params = stack_params(per_model, dtype, device)
    if transposed_kernels:
        # Kernels stored transposed, (M, out, in) in memory, seen as (M, in, out): the
        # weight gradient d^T·x then comes out in the row-major layout MKL writes fastest
        # (measured: a whole step 7.5 → 6.9 ms at 32 models).
        for layer in model.weighted:
            params[layer.weight] = params[layer.weight].transpose(1, 2).contiguous().transpose(1, 2)
    return {k: v.requires_grad_() for k, v in params.items()}


def hyperparameters(trials: list[Trial], model: Model, eq: list, dtype, device) -> dict:
    """Per-parameter hyperparameter tensors (M, 1, 1): the optimizer's, with per-layer
    multipliers and the equivalence multipliers of the first kernel applied."""
    param_layers = {q.name: (q.mult_index, q.kernel) for q in model.param_list()}
    hp = _optim.group_hyperparameters([t.spec.optim.model_dump() for t in trials], param_layers, dtype, device)
    if any(e is not None for e in eq):
        W1 = model.weighted[0].weight
        M = len(trials)
        for name, field in (("lr", "lr_mult"), ("eps", "eps_mult"), ("wd", "wd_mult")):
            f = torch.tensor([getattr(e, field) if e else 1.0 for e in eq], dtype=dtype, device=device).view(M, 1, 1)
            hp[name][W1] = hp[name][W1] * f
    return hp


def l2_coefficients(trials: list[Trial], model: Model, eq: list, dtype, device) -> dict | None:
    """Per-kernel L2 coefficients (M,), or None when no model has a penalty."""
    optims = [t.spec.optim for t in trials]
    if not any(o.l2 > 0 for o in optims):
        return None
    l2 = {layer.weight: torch.tensor([o.l2 * o.l2_mult[layer.index] for o in optims], dtype=dtype, device=device)
          for layer in model.weighted}
    W1 = model.weighted[0].weight
    l2[W1] = l2[W1] * torch.tensor([e.l2_mult if e else 1.0 for e in eq], dtype=dtype, device=device)
    return l2


def equivalences(trials: list[Trial]) -> list:
    """input.equivalent_to of each trial as a parametrization (None where unset)."""
    return [_equivalence.trial_parametrization(t.spec.model_dump()) for t in trials]
