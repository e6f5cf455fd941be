"""Dead ReLU units on the user's own model (one run, an absolute share)."""

from __future__ import annotations

from ._findings import CAUSE, Finding
from ._one_run_refs import PROBE, model, one_level, role_after
from ._registry import register
from ._view import LevelView

# A ReLU unit that is zero on every probe row gets no gradient from any of them and stays
# dead; at initialization (He or Glorot, zero bias) each unit is active on about half the
# inputs, so almost none is. Half a layer dead is half its width lost.
DEAD_SHARE = 0.5


@register({"dead-units": CAUSE}, rank=43)
def rule_dead_units(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    names = t.names(PROBE, "act{layer}.dead_frac")
    if not names:
        return []
    layers = [layer for layer in (model(t) or {}).get("layers", []) if layer.get("kind") in ("dense", "conv")]
    out = []
    for n, f in sorted(names.items()):
        steps = t.steps(PROBE, n)
        last, first = t.mean_at(PROBE, n, steps[-1]), t.mean_at(PROBE, n, steps[0])
        if last < DEAD_SHARE:
            continue
        i = int(f["layer"])
        name = layers[i]["name"] if i < len(layers) else f"layer {i}"
        ev = dict(fired="dead_fraction", dead_fraction=last, dead_fraction_start=first, layer=name, step=steps[-1])
        text = (f"at {t.label}, {100 * last:.0f}% of {name!r}'s ReLU units are dead (zero on every probe row) at step "
                f"{steps[-1]}" + (f", {100 * first:.0f}% before training" if len(steps) > 1 else "") +
                ": they get no gradient and stay dead.")
        role, text = role_after(found, ev, text, float(steps[-1]))
        out.append(Finding("dead-units", t.level, ev, text, role=role, at=float(steps[-1]) if steps[-1] else 0.0))
        break
    return out
