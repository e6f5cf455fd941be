"""A vanishing error signal: the backpropagated signal shrinking by orders of magnitude
from the head toward the input.

Principle: a layer's weight gradient is its input times the error signal d loss / d z at
its pre-activations; under SGD its step scales with that signal. When the first layer's
signal is two orders of magnitude (100×) below the head's, the first layer learns at
least 100× slower than the head in the same run: in a short run it barely moves. The
rule fires at the first probed step where the ratio is ≤ 1e-2 and quotes every layer's
signal there, with the reference's ratio at the same step. Vanishing is a product over
depth (each layer multiplies the signal by its kernel and its activation's derivative),
so the rule reads models with at least two hidden layers; with one, a drop is a single
small head kernel, not a vanishing signal. Where a cause ranked before it (saturated or
dead units, a divergence) fired, the shrinking signal is its consequence.
"""

from __future__ import annotations

import numpy as np

from .._format import fmt, pct
from ..probes._records import ErrorSignal
from ._compare import earlier_cause
from ._dead_relu import dead_from_start
from ._findings import CAUSE, CONSEQUENCE, Finding
from ._registry import register
from ._view import LevelView, key

RATIO = 1e-2
MIN_LAYERS = 3   # weighted layers: the signal crosses at least two hidden layers on its way back


def _ratios(v: LevelView) -> tuple[list[int], dict[int, float], dict[int, list[float]]]:
    """(layers, first/last signal ratio per probed step, each layer's mean signal per step)."""
    layers = sorted(int(f["layer"]) for f in v.names(ErrorSignal.name, ErrorSignal.RMS).values())
    if len(layers) < MIN_LAYERS:
        return layers, {}, {}
    first, head = key(ErrorSignal, ErrorSignal.RMS, layer=layers[0]), key(ErrorSignal, ErrorSignal.RMS, layer=layers[-1])
    out, per = {}, {}
    for s in v.steps(*first):
        vals = [float(np.nanmean(v.at(*key(ErrorSignal, ErrorSignal.RMS, layer=i), s))) for i in layers]
        if vals[-1] > 0:
            out[s], per[s] = vals[0] / vals[-1], vals
    return layers, out, per


@register({"vanishing-error-signal": CAUSE}, rank=38, needs=((ErrorSignal, ErrorSignal.RMS),))
def rule_vanishing_error_signal(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The first probed step where the first layer's error signal is ≤ 1/100 of the head's."""
    layers, ratios, per = _ratios(t)
    s = next((s for s, r in ratios.items() if r <= RATIO), None)
    if s is None:
        return []
    _, ref_ratios, _ = _ratios(ref)
    ref_steps = [u for u in ref_ratios if u <= s] or list(ref_ratios)[:1]
    ref_r = ref_ratios[ref_steps[-1]] if ref_steps else float("nan")
    ev = dict(fired="ratio", step=s, ratio=ratios[s], error_rms=dict(zip(layers, per[s])), reference_level=ref.level,
              reference_ratio=ref_r, last_step=max(ratios), last_ratio=ratios[max(ratios)])
    text = (f"at {t.label}, the backpropagated error signal vanishes toward the input: at step {s} its RMS is "
            + ", ".join(f"{fmt(x, 3)} (layer {i})" for i, x in zip(layers, per[s]))
            + f", so layer {layers[0]} gets {fmt(ratios[s], 3)}× the head's signal (step {ev['last_step']}: "
              f"{fmt(ev['last_ratio'], 3)}×). At {ref.label}, step {s}: {fmt(ref_r, 3)}×")
    cause = earlier_cause(found, s)
    role = CAUSE
    dead = dead_from_start(t, ref)
    if dead is not None:   # dead units pass no signal back: the signal vanishes because of them
        role, ev["consequence_of"] = CONSEQUENCE, "dead-relu"
        text += f"; a consequence of dead units ({pct(dead[1])} of hidden layer {dead[0]}'s from the first probed step)"
    elif cause is not None:
        role = CONSEQUENCE
        ev["consequence_of"] = cause.id
        text += f"; a consequence of {cause.id}"
    return [Finding("vanishing-error-signal", t.level, ev, text + ".", role=role, at=float(s))]
