"""Vanishing or exploding gradients across the user's layers (one run, absolute ratios)."""

from __future__ import annotations

import math

import numpy as np

from ._findings import CAUSE, Finding
from ._one_run_refs import PROBE, model, one_level, role_after
from ._registry import register
from ._view import LevelView

# Glorot and He initialization are designed so the backpropagated signal keeps its size from
# layer to layer; weight gradients of the first and the last layer then differ by what their
# inputs' sizes differ by, about a decade at most. Three decades apart, the first layers
# learn a thousand times slower (vanishing) or faster (exploding) than the last.
DECADES = 3.0


@register({"vanishing-gradients": CAUSE, "exploding-gradients": CAUSE}, rank=39)
def rule_gradient_flow(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    names = t.names(PROBE, "layer{i}.grad_rms")
    if len(names) < 3:   # the flow across layers needs a first, a middle and a last layer
        return []
    order = sorted(names, key=lambda n: int(names[n]["i"]))
    first, last = order[0], order[-1]
    steps = [s for s in t.steps(PROBE, first) if s in set(t.steps(PROBE, last))]
    ratios = []
    for s in steps:
        a, b = t.mean_at(PROBE, first, s), t.mean_at(PROBE, last, s)
        if math.isfinite(a) and math.isfinite(b) and b > 0:
            ratios.append(a / b)
    if not ratios:
        return []
    r = float(np.median(ratios))
    layers = [layer for layer in (model(t) or {}).get("layers", []) if layer.get("kind") in ("dense", "conv")]
    names_ = (layers[0]["name"], layers[-1]["name"]) if len(layers) >= 2 else ("the first layer", "the last layer")
    if r <= 10 ** -DECADES:
        fid, word = "vanishing-gradients", "vanish"
    elif r >= 10 ** DECADES:
        fid, word = "exploding-gradients", "explode"
    else:
        return []
    ev = dict(fired="grad_rms_ratio", grad_rms_ratio=r, first_layer=names_[0], last_layer=names_[1],
              steps=len(ratios), threshold=10 ** (-DECADES if word == "vanish" else DECADES))
    text = (f"at {t.label}, gradients {word} across the {len(order)} layers: {names_[0]!r}'s weight gradient is "
            f"{r:.2g}x {names_[1]!r}'s (median of {len(ratios)} probed steps)" +
            (": the first layers barely learn." if word == "vanish" else ": the first layers take huge steps."))
    role, text = role_after(found, ev, text, 0.0)
    return [Finding(fid, t.level, ev, text, role=role, at=0.0)]
