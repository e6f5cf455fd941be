"""Dead units: hidden units that are zero on every probe sample."""

from __future__ import annotations

import math

from .._format import pct
from ..probes._records import Activations
from ._compare import earlier_cause, value_at
from ._findings import CAUSE, CONSEQUENCE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key


def dead_fractions(v: LevelView) -> dict[int, float]:
    """Per hidden layer, the dead-unit fraction at the last probed step (mean over seeds)."""
    out = {}
    for n, fields in v.names(Activations.name, Activations.DEAD_FRAC).items():
        out[int(fields["layer"])] = v.mean_at(Activations.name, n, v.last_step(Activations.name, n))
    return out


def dead_from_start(t: LevelView, ref: LevelView) -> tuple[int, float] | None:
    """(layer, fraction) of the first hidden layer whose dead fraction is already elevated
    (≥ 2× the reference's + 5 points) at the first probed step: units dead before any
    update, a starting condition that a slow first layer or a vanishing signal then follows."""
    if t is ref or not (_relu(t) and _relu(ref)):
        return None
    for n, fields in sorted(t.names(Activations.name, Activations.DEAD_FRAC).items()):
        s0 = t.steps(Activations.name, n)[0]
        d = t.mean_at(Activations.name, n, s0)
        r = value_at(ref, (Activations.name, n), s0)
        if d >= 2 * (r if r == r else 0.0) + 0.05:
            return int(fields["layer"]), d
    return None


def _relu(v: LevelView) -> bool:
    return v.spec.model.kind == "layers" or v.spec.model.activation == "relu"


def _or0(x: float) -> float:
    return 0.0 if x != x else x


@register({"dead-relu": CAUSE}, rank=42, needs=((Activations, Activations.DEAD_FRAC),))
def rule_dead_relu(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Dead units (zero activation on every probe sample) compared with the reference: an
    elevated fraction is reported (a cause; a consequence where a cause ranked before it
    fired: units killed by a divergence, or on raw inputs whose loss gradient is already
    zero); for a level where a cause already fired, that dead units are *not* elevated is
    reported too, as a note (it rules a common guess out)."""
    pathological = earlier_cause(found) is not None
    dead, ref_dead = dead_fractions(t), dead_fractions(ref)
    # a dead unit is a ReLU's: a tanh or sigmoid unit is never exactly zero, so only a ReLU
    # reference says how many dead ReLUs are usual
    if not dead or t is ref or not (_relu(t) and _relu(ref)):
        return []
    out = []
    for i, d in sorted(dead.items()):
        r = ref_dead.get(i, math.nan)
        elevated = d >= 2 * r + 0.05
        if not elevated and not pathological:
            continue
        k = key(Activations, Activations.DEAD_FRAC, layer=i)
        ev = dict(fired="dead_fraction", layer=i, dead_fraction=d, reference_level=ref.level, reference_dead_fraction=r, elevated=elevated,
                  step=t.last_step(*k))
        role, first = NOTE, None
        if elevated:
            # when they became elevated: the first probed step over 2× the reference's (+5 points) there
            first = next(s for s in t.steps(*k) if t.mean_at(*k, s) >= 2 * _or0(value_at(ref, k, s)) + 0.05)
            ev.update(first_step=first, dead_fraction_first=t.mean_at(*k, first),
                      reference_dead_fraction_first=value_at(ref, k, first))
            text = (f"at {t.label}, {pct(d)} of hidden layer {i}'s units are dead (zero on every probe sample) at step "
                    f"{ev['step']}, against {pct(r)} at {ref.label}")
            if first != ev["step"]:
                text += (f"; they were {pct(ev['dead_fraction_first'])} from step {first} (at {ref.label}: "
                         f"{pct(_or0(ev['reference_dead_fraction_first']))})")
            cause = earlier_cause(found, float(first))
            role = CAUSE if cause is None else CONSEQUENCE
            if cause is not None:
                ev["consequence_of"] = cause.id
                text += f"; a consequence of {cause.id}"
            text += "."
        else:
            text = (f"at {t.label}, dead units are not the cause: {pct(d)} of hidden layer {i}'s units are dead at step "
                    f"{ev['step']}, against {pct(r)} at {ref.label}.")
        out.append(Finding("dead-relu", t.level, ev, text, role=role, at=None if first is None else float(first)))
    return out
