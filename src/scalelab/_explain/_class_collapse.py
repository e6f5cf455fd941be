"""Predictions that collapsed onto one or two classes."""

from __future__ import annotations

import math

import numpy as np

from .._levels import pct
from ..probes import Logits
from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView, key

CLASSES_FOR_95 = key(Logits, Logits.CLASSES_FOR_95)
TOP_CLASS_SHARE = key(Logits, Logits.TOP_CLASS_SHARE)


@register({"class-collapse": CAUSE}, rank=30,
          needs=((Logits, Logits.CLASSES_FOR_95), (Logits, Logits.PRED_SHARE), (Logits, Logits.TOP_CLASS_SHARE)))
def rule_class_collapse(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Predictions collapsed onto one or two classes at the end of training."""
    if not t.has(*CLASSES_FOR_95):
        return []
    k = len(t.names(Logits.name, Logits.PRED_SHARE))   # one share per class: the number of classes
    if k < 5:
        return []
    last = t.last_step(*CLASSES_FOR_95)
    per_seed = t.at(*CLASSES_FOR_95, last)
    collapsed = int(np.sum(per_seed <= 2))
    if collapsed * 2 <= len(per_seed):
        return []
    top = t.at(*TOP_CLASS_SHARE, last)
    ref_last = ref.last_step(*CLASSES_FOR_95)
    ev = dict(step=last, seeds_collapsed=collapsed, n_seeds=len(per_seed),
              classes_for_95pct=[int(x) for x in per_seed], top_class_share=[float(x) for x in top],
              n_classes=k, test_accuracy=t.final_test_acc,
              reference_level=ref.level, reference_classes_for_95pct=ref.mean_at(*CLASSES_FOR_95, ref_last))
    text = (f"at {t.label}, predictions collapsed onto one or two of {k} classes in {collapsed} of {len(per_seed)} seeds "
            f"(step {last}: the top class took {pct(float(np.mean(top)))} of predictions on average; classes covering "
            f"95%: {', '.join(str(int(x)) for x in per_seed)})"
            # a watched run may have no test set
            + (f"; test accuracy {t.final_test_acc:.3f}" if math.isfinite(t.final_test_acc) else "")
            + f". At {ref.label}: {ev['reference_classes_for_95pct']:.1f} classes cover 95%.")
    return [Finding("class-collapse", t.level, ev, text)]
