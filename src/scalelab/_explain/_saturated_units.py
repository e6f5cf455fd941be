"""Saturated tanh/sigmoid units on the user's own model (one run, an absolute share)."""

from __future__ import annotations

from ._findings import CAUSE, Finding
from ._one_run_refs import PROBE, model, one_level, role_after
from ._registry import register
from ._view import LevelView

# An activation is saturated where its derivative is under 5% of its maximum (see
# scalelab.attach._one_run): it passes back almost no gradient. Half of a layer's activations
# so is half its signal not learning.
SATURATED_SHARE = 0.5


@register({"saturated-tanh-sigmoid": CAUSE}, rank=29)
def rule_saturated_units(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    names = t.names(PROBE, "pre{layer}.saturated_frac")
    layers = [layer for layer in (model(t) or {}).get("layers", []) if layer.get("kind") in ("dense", "conv")]
    for n, f in sorted(names.items()):
        steps = t.steps(PROBE, n)
        worst = max(steps, key=lambda s: t.mean_at(PROBE, n, s))
        share = t.mean_at(PROBE, n, worst)
        if share < SATURATED_SHARE:
            continue
        i = int(f["layer"])
        name = layers[i]["name"] if i < len(layers) else f"layer {i}"
        act = layers[i].get("activation") if i < len(layers) else "tanh/sigmoid"
        ev = dict(fired="saturated_fraction", saturated_fraction=share, layer=name, step=worst)
        text = (f"at {t.label}, {100 * share:.0f}% of {name!r}'s {act} units are saturated at step {worst} (derivative "
                "under 5% of its maximum, over the probe rows): they pass back almost no gradient.")
        role, text = role_after(found, ev, text, float(worst))
        return [Finding("saturated-tanh-sigmoid", t.level, ev, text, role=role, at=float(worst))]
    return []
