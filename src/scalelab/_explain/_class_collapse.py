"""Predictions that collapsed onto fewer classes than the labels need.

Principles: with K ≥ 5 classes, predictions that one or two classes cover (95% of them) in
most seeds have collapsed whatever the label balance. With fewer classes (binary tasks)
two classes are all there is, so the predictions are compared with the labels: collapse
is one class covering 95% of the predictions while the labels need more than one class to
cover 95% (a constant prediction is wrong on more than 5% of the samples). Where a cause
ranked before this rule fired (a divergence, a zero gradient, ...), the collapse is its
consequence.
"""

from __future__ import annotations

import math

import numpy as np

from .._format import pct
from ..probes._records import Logits
from ._compare import earlier_cause
from ._findings import CAUSE, CONSEQUENCE, Finding
from ._registry import register
from ._view import LevelView, key

CLASSES_FOR_95 = key(Logits, Logits.CLASSES_FOR_95)
TRUE_FOR_95 = key(Logits, Logits.TRUE_CLASSES_FOR_95)
TOP_CLASS_SHARE = key(Logits, Logits.TOP_CLASS_SHARE)


@register({"class-collapse": CAUSE}, rank=75,
          needs=((Logits, Logits.CLASSES_FOR_95), (Logits, Logits.PRED_SHARE), (Logits, Logits.TOP_CLASS_SHARE),
                 (Logits, Logits.TRUE_CLASSES_FOR_95)))
def rule_class_collapse(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Predictions collapsed at the end of training in more than half of the seeds."""
    if not t.has(*CLASSES_FOR_95):
        return []
    k = len(t.names(Logits.name, Logits.PRED_SHARE))   # one share per class: the number of classes
    last = t.last_step(*CLASSES_FOR_95)
    per_seed = t.at(*CLASSES_FOR_95, last)
    if k >= 5:
        limit, labels = 2, None
    elif t.has(*TRUE_FOR_95):
        limit, labels = 1, t.at(*TRUE_FOR_95, last)
    else:
        return []
    hit = per_seed <= limit if labels is None else (per_seed <= limit) & (labels > per_seed)
    collapsed = int(np.sum(hit))
    if collapsed * 2 <= len(per_seed):
        return []
    top = t.at(*TOP_CLASS_SHARE, last)
    ref_last = ref.last_step(*CLASSES_FOR_95) if ref.has(*CLASSES_FOR_95) else last
    ev = dict(fired="seeds_collapsed", step=last, seeds_collapsed=collapsed, n_seeds=len(per_seed),
              classes_for_95pct=[int(x) for x in per_seed], top_class_share=[float(x) for x in top],
              n_classes=k, test_accuracy=t.final_test_acc, reference_level=ref.level,
              reference_classes_for_95pct=ref.mean_at(*CLASSES_FOR_95, ref_last) if ref.has(*CLASSES_FOR_95)
              else math.nan)
    onto = "one or two" if labels is None else "one"
    text = (f"at {t.label}, predictions collapsed onto {onto} of {k} classes in {collapsed} of {len(per_seed)} seeds "
            f"(step {last}: the top class took {pct(float(np.mean(top)))} of predictions on average; classes covering "
            f"95%: {', '.join(str(int(x)) for x in per_seed)}"
            + (f"; the labels need {', '.join(str(int(x)) for x in labels)}" if labels is not None else "") + ")"
            # a watched run may have no test set
            + (f"; test accuracy {t.final_test_acc:.3f}" if math.isfinite(t.final_test_acc) else "")
            + f". At {ref.label}: {ev['reference_classes_for_95pct']:.1f} classes cover 95%")
    role = CAUSE
    if (cause := earlier_cause(found, last)) is not None:
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    return [Finding("class-collapse", t.level, ev, text + ".", role=role, at=float(last))]
