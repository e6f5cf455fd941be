"""Optimizers for stacked models: pure optax-style chains (the reference), fused in-place
kernels (training), and the registry of optimizer families that ties each spec name to
both and to its input-scale equivalence rule.

The names load on first use (PEP 562): the family table (``_families``) is read by spec
resolution and explain without torch; chains, kernels and the fused optimizer need it.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    'AdamState': '_chains',
    'EmptyState': '_chains',
    'FAMILIES': '_families',
    'Family': '_families',
    'FusedOptimizer': '_fused',
    'InputScaleRule': '_families',
    'Params': '_chains',
    'TraceState': '_chains',
    'Transform': '_chains',
    'adam': '_chains',
    'adam_all': '_kernels',
    'adam_kernel': '_kernels',
    'adam_step_scalars': '_chains',
    'adamw': '_chains',
    'add_decayed_weights': '_chains',
    'apply_updates': '_chains',
    'chain': '_chains',
    'compile_step': '_compile',
    'family_of': '_families',
    'group_family': '_families',
    'group_hyperparameters': '_hyperparameters',
    'l1_coefficients': '_proximal',
    'l1_prox': '_proximal',
    'l2_penalty': '_hyperparameters',
    'momentum': '_chains',
    'momentum_all': '_kernels',
    'momentum_kernel': '_kernels',
    'optimizer_names': '_families',
    'register': '_families',
    'scale_by_adam': '_chains',
    'scale_by_lr': '_chains',
    'sgd': '_chains',
    'sgd_all': '_kernels',
    'sgd_kernel': '_kernels',
    'stack_key': '_families',
    'trace': '_chains',
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
