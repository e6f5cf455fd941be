"""A level that looks healthy, with the numbers that were checked."""

from __future__ import annotations

import numpy as np

from .._format import pct
from ..probes._records import Activations, Logits, ZeroGradient
from ._dead_relu import dead_fractions
from ._findings import CAUSE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

SHARE = key(ZeroGradient, ZeroGradient.SHARE)
CLASSES_FOR_95 = key(Logits, Logits.CLASSES_FOR_95)


# ranked last: it reads what every other rule found for the level
@register({"no-pathology": NOTE}, rank=1000,
          needs=((ZeroGradient, ZeroGradient.SHARE), (Logits, Logits.CLASSES_FOR_95),
                 (Activations, Activations.DEAD_FRAC)))
def rule_no_pathology(t: LevelView, ref: LevelView | None = None, found=()) -> list[Finding]:
    """A level where no rule found a cause, with the numbers that were checked."""
    if any(f.role == CAUSE for f in found):
        return []
    ev, parts = {}, []
    if t.has(*SHARE):
        ev["max_zero_grad_share"] = max(t.mean_at(*SHARE, s) for s in t.steps(*SHARE))
        parts.append(f"zero-gradient share at most {pct(ev['max_zero_grad_share'])}")
    if t.has(*CLASSES_FOR_95):
        ev["classes_for_95pct"] = t.mean_at(*CLASSES_FOR_95, t.last_step(*CLASSES_FOR_95))
        parts.append(f"{ev['classes_for_95pct']:.1f} classes cover 95% of predictions")
    dead = dead_fractions(t)
    if dead:
        ev["dead_fraction"] = dead
        parts.append("dead units " + ", ".join(f"{pct(d)} (layer {i})" for i, d in dead.items()))
    if "test_r2" in t.final:
        ev["test_r2_median"] = float(np.nanmedian(t.final["test_r2"]))
        parts.append(f"test R² {ev['test_r2_median']:.3g}")
    if not parts:
        return []
    ev["final_train_loss"] = t.final_train_loss
    text = f"at {t.label}, healthy: no pathology found: {'; '.join(parts)}; final train loss {t.final_train_loss:.3g}."
    return [Finding("no-pathology", t.level, ev, text)]
