"""Optimizers for stacked models: pure optax-style chains (the reference), fused in-place
kernels (training), and the registry of optimizer families that ties each spec name to
both and to its input-scale equivalence rule."""

from ._chains import (AdamState, EmptyState, Params, TraceState, Transform, adam, adam_step_scalars, adamw,
                      add_decayed_weights, apply_updates, chain, momentum, scale_by_adam, scale_by_lr, sgd, trace)
from ._compile import compile_step
from ._families import (FAMILIES, Family, InputScaleRule, family_of, group_family, optimizer_names, register,
                        stack_key)
from ._fused import FusedOptimizer
from ._hyperparameters import group_hyperparameters, l2_penalty
from ._proximal import l1_coefficients, l1_prox
from ._kernels import adam_all, adam_kernel, momentum_all, momentum_kernel, sgd_all, sgd_kernel

__all__ = [
    "AdamState", "EmptyState", "FAMILIES", "Family", "FusedOptimizer", "InputScaleRule", "Params", "TraceState",
    "Transform", "adam", "adam_all", "adam_kernel", "adam_step_scalars", "adamw", "add_decayed_weights",
    "apply_updates", "chain", "compile_step", "family_of", "group_family", "group_hyperparameters", "l2_penalty",
    "l1_coefficients", "l1_prox", "momentum", "momentum_all", "momentum_kernel", "optimizer_names", "register", "scale_by_adam", "scale_by_lr",
    "sgd", "sgd_all", "sgd_kernel", "stack_key", "trace",
]
