"""How far one update moves the first layer's pre-activations, against the reference."""

from __future__ import annotations

from .._format import fmt, pct
from .._spec import TrialSpec
from ..probes._records import PreactivationStep, UpdateRatio
from ._compare import earlier_cause
from ._dead_relu import dead_from_start
from ._findings import CAUSE, CONSEQUENCE, Finding
from ._registry import register
from ._view import LevelView, key

PRE0_CHANGE = key(PreactivationStep, PreactivationStep.RMS_CHANGE, layer=0)
W0_STEP = key(UpdateRatio, UpdateRatio.RMS, param="dense0.W")


@register({"small-first-layer-step": CAUSE}, rank=40,
          needs=((PreactivationStep, PreactivationStep.RMS_CHANGE), (UpdateRatio, UpdateRatio.RMS)))
def rule_first_layer_step(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """How far one update moves the first layer's pre-activations (its own weights' step),
    against the reference: ≥ 2× smaller is a slower start."""
    if not t.has(*PRE0_CHANGE) or not ref.has(*PRE0_CHANGE) or t is ref:
        return []
    a, b = t.per_seed_median(*PRE0_CHANGE), ref.per_seed_median(*PRE0_CHANGE)
    if not (a > 0 and b > 0) or b / a < 2:
        return []
    ev = dict(fired="ratio", rms_change_median=a, reference_rms_change_median=b, ratio=b / a, reference_level=ref.level,
              steps=len(t.steps(*PRE0_CHANGE)))
    text = (f"at {t.label}, one update moved the first layer's pre-activations by {fmt(a, 3)} (RMS, median over "
            f"{ev['steps']} probed steps), {b / a:.1f}× less than at {ref.label} ({fmt(b, 3)})")
    if t.has(*W0_STEP) and ref.has(*W0_STEP):
        ua, ub = t.per_seed_median(*W0_STEP), ref.per_seed_median(*W0_STEP)
        ev.update(weight_step_rms=ua, reference_weight_step_rms=ub)
        similar = max(ua, ub) <= 1.5 * min(ua, ub)
        text += (f", while the first-layer weight step was about the same size ({fmt(ua, 3)} vs {fmt(ub, 3)} RMS)"
                 if similar else f"; the first-layer weight step was {fmt(ua, 3)} vs {fmt(ub, 3)} RMS")
    sa, sb = input_factor(t.spec), input_factor(ref.spec)
    if sa and sb and sb / sa >= 1.5:
        ev["input_scale_ratio"] = sb / sa
        text += f": its inputs are {sb / sa:.2f}× smaller, so the same weight step changes the layer's output less"
    role = CAUSE
    dead = dead_from_start(t, ref)
    if dead is not None:   # units dead before any update: the step is small because they pass nothing
        role, ev["consequence_of"] = CONSEQUENCE, "dead-relu"
        text += f"; a consequence of dead units ({pct(dead[1])} of hidden layer {dead[0]}'s from the first probed step)"
    elif (cause := earlier_cause(found)) is not None:   # e.g. a vanishing error signal leaves the first layer no step
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    return [Finding("small-first-layer-step", t.level, ev, text + ".", role=role)]


def input_factor(spec: TrialSpec) -> float | None:
    """The factor the inputs were multiplied by, where the transform is a plain scaling."""
    if spec.input.transform == "scale":
        return float(spec.input.scale)
    return 1.0 if spec.input.transform == "none" else None
