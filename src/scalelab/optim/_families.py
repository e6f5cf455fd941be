"""The optimizer families, each registered once.

A family is what the engine trains as one fused kernel: the optimizer names of the spec
it serves, the per-parameter hyperparameters it reads, its pure reference chain, its
in-place kernel, and the input-scale rule that keeps training exact when the inputs are
multiplied by c (derived in :mod:`scalelab._equivalence`). Everything that asks "which
family is this optimizer" goes through :func:`family_of` or :func:`group_family`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable, Iterable


def _chains():
    # the reference chains and kernels need torch; the table of families does not (spec
    # resolution and explain read it), so they are imported where a family is trained
    return import_module("scalelab.optim._chains")


def _function(ref: str | None) -> Callable | None:
    """``"_kernels.sgd_all"`` -> that function of this package (imported on first use)."""
    if ref is None:
        return None
    module, name = ref.split(".")
    return getattr(import_module(f"scalelab.optim.{module}"), name)


@dataclass(frozen=True)
class InputScaleRule:
    """Multipliers of the first kernel's lr, eps, L2 and weight decay that make inputs × c
    train exactly like the original inputs (biases and later layers keep theirs)."""

    lr: float
    eps: float
    l2: float
    wd: float


@dataclass(frozen=True)
class Family:
    name: str
    optimizers: tuple[str, ...]       # the spec's optim.name values it serves
    hyperparameters: tuple[str, ...]  # every hyperparameter it reads; kernel lists in kernel order
    moments: tuple[str, ...]          # per-parameter state, zero at step 0, in kernel order
    kernel_ref: str                   # "_kernels.NAME": kernel(ps, gs, *moments, *kernel_hyperparameters, *step_scalars)
    chain: Callable[[dict, bool], object]  # (hp, nesterov) -> the reference chain (an optim._chains.Transform)
    input_scale: Callable[[float], InputScaleRule]
    # Scalars computed once per step outside the kernel, from the first parameter's
    # hyperparameters: (hp0, t, nesterov) -> tuple. Names only read here are in ``per_step``.
    step_scalars: Callable[[dict, float, bool], tuple] = lambda hp0, t, nesterov: ()
    per_step: tuple[str, ...] = ()
    # A group mixing this family with the family named here runs as that one (exactly).
    stacks_in: str | None = None
    # Row-sparse families: "_rows.NAME", the step of a lookup table from its used rows only,
    # row_kernel(p, rows, g_rows, *moments, *kernel_hyperparameters, *step_scalars) (see _rows);
    # None: tables take the dense kernel like every other parameter.
    row_kernel_ref: str | None = None

    @property
    def kernel(self) -> Callable:
        return _function(self.kernel_ref)

    @property
    def row_kernel(self) -> Callable | None:
        return _function(self.row_kernel_ref)

    @property
    def row_sparse(self) -> bool:
        """Whether a lookup table steps on its used rows only (read without importing the kernel)."""
        return self.row_kernel_ref is not None

    @property
    def kernel_hyperparameters(self) -> tuple[str, ...]:
        return tuple(h for h in self.hyperparameters if h not in self.per_step)


FAMILIES: dict[str, Family] = {}
_BY_OPTIMIZER: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family``; an optimizer name belongs to one family only."""
    taken = [o for o in family.optimizers if o in _BY_OPTIMIZER]
    if family.name in FAMILIES or taken:
        raise ValueError(f"family {family.name!r}: it or its optimizers {taken} are registered already")
    FAMILIES[family.name] = family
    _BY_OPTIMIZER.update(dict.fromkeys(family.optimizers, family))
    return family


def optimizer_names() -> tuple[str, ...]:
    return tuple(_BY_OPTIMIZER)


def family_of(optimizer: str) -> Family:
    """The family that serves the optimizer name ``optimizer`` (a spec's optim.name)."""
    try:
        return _BY_OPTIMIZER[optimizer]
    except KeyError:
        *head, last = optimizer_names()
        raise ValueError(f"optimizer {optimizer!r}: expected {', '.join(head)} or {last}") from None


def stack_key(optimizer: str) -> str:
    """Optimizers with the same key can train in one stacked group."""
    f = family_of(optimizer)
    return f.stacks_in or f.name


def group_family(optimizers: Iterable[str]) -> Family:
    """The family whose kernel trains a stacked group of models with these optimizers."""
    names = {family_of(o).name for o in optimizers}
    keys = {FAMILIES[n].stacks_in or n for n in names}
    if len(names) == 1 or len(keys) == 1:
        return FAMILIES[(names if len(names) == 1 else keys).pop()]
    raise ValueError(f"families {sorted(names)} cannot train in one stacked group")


# ----------------------------------------------------------------------------- input-scale rules
# Inputs × c make the first kernel's gradient c times larger while its weights must stay
# 1/c times smaller (see scalelab._equivalence). The L2 penalty lives in the loss, so
# λ·c² holds for every optimizer.

def _lr_times_gradient_rule(c: float) -> InputScaleRule:
    # the step is lr·(sum of) gradients: lr/c² turns c·g into g/c; decay lr·wd·W needs wd·c²
    return InputScaleRule(lr=1 / (c * c), eps=1.0, l2=c * c, wd=c * c)


def _normalized_rule(c: float) -> InputScaleRule:
    # m/(√v + eps) is scale-free once eps scales with √v: lr/c; decay lr·wd·W needs wd·c
    return InputScaleRule(lr=1 / c, eps=c, l2=c * c, wd=c)


# ----------------------------------------------------------------------------- the families

def _decayed(*parts, hp):
    C = _chains()
    return C.chain(*parts, C.add_decayed_weights(hp["wd"]), C.scale_by_lr(hp["lr"]))


SGD = register(Family(
    name="sgd", optimizers=("sgd",), hyperparameters=("lr", "wd"), moments=(), kernel_ref="_kernels.sgd_all",
    chain=lambda hp, nesterov: _decayed(hp=hp),
    input_scale=_lr_times_gradient_rule,
    # plain SGD is momentum with momentum 0, bit for bit: buf = 0·buf + g = g
    stacks_in="momentum",
))

MOMENTUM = register(Family(
    name="momentum", optimizers=("momentum",), hyperparameters=("lr", "mom", "wd"), moments=("buf",),
    kernel_ref="_kernels.momentum_all",
    chain=lambda hp, nesterov: _decayed(_chains().trace(hp["mom"], nesterov), hp=hp),
    input_scale=_lr_times_gradient_rule,
    step_scalars=lambda hp0, t, nesterov: (nesterov,),
))

ADAM = register(Family(
    # AdamW is Adam with decoupled weight decay, which both kernels apply: one family.
    name="adam", optimizers=("adam", "adamw"), hyperparameters=("lr", "b1", "b2", "eps", "wd", "keras"),
    moments=("m", "v"), kernel_ref="_kernels.adam_all",
    chain=lambda hp, nesterov: _decayed(_chains().scale_by_adam(hp["b1"], hp["b2"], hp["eps"], hp["keras"]), hp=hp),
    input_scale=_normalized_rule,
    step_scalars=lambda hp0, t, nesterov: _chains().adam_step_scalars(hp0["b1"], hp0["b2"], hp0["keras"], t),
    per_step=("keras",),
))


# ----------------------------------------------------------------------------- row-sparse families
# Lookup tables (embedding) updated on the rows a batch used only; other parameters as their
# dense family. Which of these change the mathematics, and how: see optim._rows.
SPARSE_SGD = register(Family(
    name="sparse_sgd", optimizers=("sparse_sgd",), hyperparameters=SGD.hyperparameters, moments=(), kernel_ref="_kernels.sgd_all",
    chain=SGD.chain, input_scale=_lr_times_gradient_rule, row_kernel_ref="_rows.sgd_rows",
))

LAZY_ADAM = register(Family(
    name="lazy_adam", optimizers=("lazy_adam", "sparse_adam"), hyperparameters=ADAM.hyperparameters,
    moments=ADAM.moments, kernel_ref="_kernels.adam_all", chain=ADAM.chain, input_scale=_normalized_rule,
    step_scalars=ADAM.step_scalars, per_step=ADAM.per_step, row_kernel_ref="_rows.lazy_adam_rows",
))
