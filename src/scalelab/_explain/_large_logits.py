"""Large logits under a from-logits cross-entropy: a huge loss with an ordinary accuracy.

Principles: ln K is the loss of the uniform prediction over K classes. A model that
classifies at least twice as well as chance (accuracy ≥ 2/K) but whose mean loss is above
ln K can only owe that loss to samples whose true class gets a vanishing probability:
confidently wrong samples, −log p = (wrong logit − true logit), unbounded when the loss is
computed from logits (a clipped softmax caps it, see the zero-gradient rule). That the 5%
highest-loss samples carry at least half of the loss (ten times their share) says the loss
comes from a few such samples, not from the model as a whole. The logit scale is quoted
against the reference at the same step.
"""

from __future__ import annotations

import math

from .._format import fmt, pct
from ..probes._records import Logits, Loss, SampleLoss
from ._compare import value_at
from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView, key

PROBE_LOSS = key(Loss, Loss.PROBE_BATCH)
ACCURACY = key(SampleLoss, SampleLoss.ACCURACY)
TOP5 = key(SampleLoss, SampleLoss.TOP5_SHARE)
RANGE = key(Logits, Logits.MEDIAN_RANGE)
TOP5_CARRIES = 0.5


@register({"large-logits": CAUSE}, rank=22,
          needs=((Loss, Loss.PROBE_BATCH), (SampleLoss, SampleLoss.ACCURACY), (SampleLoss, SampleLoss.TOP5_SHARE),
                 (Logits, Logits.MEDIAN_RANGE), (Logits, Logits.PRED_SHARE)))
def rule_large_logits(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """At the last probed step, and quoted from the first step since which it held: probe
    loss > ln K, accuracy ≥ 2/K and the top 5% of samples carry ≥ half the loss, under a
    cross-entropy on logits."""
    if not (t.spec.loss.name == "crossentropy" and t.spec.loss.from_logits) or not (t.has(*ACCURACY) and
                                                                                    t.has(*PROBE_LOSS)):
        return []
    k = len(t.names(Logits.name, Logits.PRED_SHARE)) or 2

    def holds(s):
        loss, acc, top5 = value_at(t, PROBE_LOSS, s), value_at(t, ACCURACY, s), value_at(t, TOP5, s)
        return loss > math.log(k) and acc >= min(1.0, 2.0 / k) and top5 >= TOP5_CARRIES

    steps = [s for s in t.steps(*PROBE_LOSS) if s <= t.last_step(*ACCURACY)]
    if not steps or not holds(steps[-1]):   # it must describe the trained model
        return []
    # when it showed: the first probed step from which it held at every later one
    s = next(u for i, u in enumerate(steps) if all(holds(w) for w in steps[i:]))
    loss, acc, top5 = value_at(t, PROBE_LOSS, s), value_at(t, ACCURACY, s), value_at(t, TOP5, s)
    ev = dict(fired="probe_loss", step=s, last_step=steps[-1], probe_loss=loss, ln_k=math.log(k), probe_accuracy=acc, top5pct_loss_share=top5,
              median_logit_range=value_at(t, RANGE, s), reference_level=ref.level,
              reference_probe_loss=value_at(ref, PROBE_LOSS, s), reference_probe_accuracy=value_at(ref, ACCURACY, s),
              reference_median_logit_range=value_at(ref, RANGE, s))
    text = (f"at {t.label}, a few confidently wrong samples with huge logits dominate the loss: at step {s} the "
            f"probe-batch loss is {fmt(loss, 3)} (above ln {k} = {math.log(k):.2f}, the uniform prediction's) with "
            f"accuracy {pct(acc)}, and the 5% highest-loss samples carry {pct(top5)} of it; the median logit range "
            f"is {fmt(ev['median_logit_range'], 3)}. At {ref.label}, step {s}: loss {fmt(ev['reference_probe_loss'], 3)}, "
            f"accuracy {pct(ev['reference_probe_accuracy'])}, logit range {fmt(ev['reference_median_logit_range'], 3)}.")
    return [Finding("large-logits", t.level, ev, text, at=float(s))]
