"""Per-model hyperparameters of a stacked group, and the L2 penalty that goes into its loss."""

from __future__ import annotations

import torch

from ._chains import Params


def l2_penalty(params: Params, l2: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-model penalty sum_layers l2_layer · ||W_layer||² over kernels: shape (M,)."""
    total = None
    for name, coef in l2.items():
        term = coef.view(-1) * params[name].pow(2).sum(dim=(1, 2))
        total = term if total is None else total + term
    return total


def group_hyperparameters(optims: list[dict], param_layers: dict[str, tuple[int, bool]], dtype, device) -> dict:
    """Per-parameter hyperparameter tensors of shape (M, 1, 1) from each model's ``optim`` section.
    A parameter whose layer index is None (BatchNorm's scale and shift) takes no per-layer multiplier."""
    one = lambda mults, l: 1.0 if l is None else mults[l]  # noqa: E731

    def per_param(fn) -> dict[str, torch.Tensor]:
        return {name: torch.tensor([fn(o, layer) for o in optims], dtype=dtype, device=device).view(-1, 1, 1)
                for name, (layer, _) in param_layers.items()}

    return dict(
        lr=per_param(lambda o, l: o["lr"] * one(o["lr_mult"], l)),
        wd=per_param(lambda o, l: o["weight_decay"] * one(o["wd_mult"], l)),
        b1=per_param(lambda o, l: o["beta1"]),
        b2=per_param(lambda o, l: o["beta2"]),
        eps=per_param(lambda o, l: o["eps"] * one(o["eps_mult"], l)),
        keras=per_param(lambda o, l: 1.0 if o["eps_mode"] == "keras" else 0.0),
        mom=per_param(lambda o, l: o["momentum"] if o["name"] == "momentum" else 0.0),
    )
