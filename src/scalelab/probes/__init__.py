"""Probes: diagnostics recorded inside training, one small class per file.

Each probe returns one value per model of a stacked group for each quantity it
measures; :class:`ProbeSet` runs the due probes of a step and hands the rows
``(step, probe, quantity, value)`` to each trial's result, which the store keeps.

Presets, by cost: ``cheap`` (losses, gradient norms, logits, the zero-gradient share,
the per-sample loss spread, input/output/target scales and tanh/sigmoid saturation: one
forward pass on the probe batch), ``standard`` (adds activation statistics and dead
units, update sizes, the per-step change of pre-activations, Adam's eps share and the
backpropagated error signal per layer), ``full`` (adds the largest and most negative
Hessian eigenvalues by shifted power iteration, ~80 backward passes).

Step s means: the model before update s + 1 (forward probes) and that update (after-
step probes). Steps are log-spaced by default (dense early, where scale problems show),
always including step 0 and the last step.

What a probe records (names only, no torch) is in ``_records``; the probe set in ``_set``.
The names below load on first use (PEP 562), so reading records never imports torch.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    'PRESETS': '_records',
    'PROBES': '_set',
    'Probe': '_base',
    'ProbeContext': '_base',
    'ProbeSet': '_set',
    'Schedule': '_base',
    'make_probe_set': '_set',
    'schedule_steps': '_set',
    'Activations': '_activations',
    'AdamEps': '_adam_eps',
    'ErrorSignal': '_error_signal',
    'Gradients': '_gradients',
    'Hessian': '_hessian',
    'Logits': '_logits',
    'Loss': '_loss',
    'PreactivationStep': '_preact_step',
    'SampleLoss': '_sample_loss',
    'Saturation': '_saturation',
    'Scales': '_scales',
    'UpdateRatio': '_update_ratio',
    'ZeroGradient': '_zero_grad',
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
