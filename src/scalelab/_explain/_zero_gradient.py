"""Samples with an exactly zero loss gradient (a clipped cross-entropy's flat tails), the
plateau loss they imply, and a batch gradient that stopped for good.

The zero-gradient share is split by correctness: a confidently *correct* sample has an
exactly zero gradient in float32 too (its probability rounds to 1, or sits above
1 − clip), which is training done, so it is reported as a note. Only misclassified
samples with a zero gradient (the clip's lower tail: the model cannot learn them) are a
cause. Principle of the threshold: when a quarter of the samples teach nothing, a quarter
of every batch's signal is missing and the loss has a floor it cannot go below. Probe
records without the split (older stores) fall back to the share of all samples.
"""

from __future__ import annotations

import math

import numpy as np

from .._format import pct
from ..probes._records import Gradients, Logits, ZeroGradient
from ._compare import earlier_cause, value_at
from ._findings import CAUSE, CONSEQUENCE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

SHARE = key(ZeroGradient, ZeroGradient.SHARE)
SHARE_WRONG = key(ZeroGradient, ZeroGradient.SHARE_WRONG)
SHARE_CORRECT = key(ZeroGradient, ZeroGradient.SHARE_CORRECT)
BELOW_CLIP = key(Logits, Logits.BELOW_CLIP)
ABOVE_CLIP = key(Logits, Logits.ABOVE_CLIP)
TOTAL_NORM = key(Gradients, Gradients.TOTAL_NORM)
THRESHOLD = 0.25


@register({"zero-gradient": CAUSE, "clipped-zero-gradient": CAUSE, "zero-gradient-correct": NOTE}, rank=20,
          needs=((ZeroGradient, ZeroGradient.SHARE), (ZeroGradient, ZeroGradient.SHARE_WRONG),
                 (ZeroGradient, ZeroGradient.SHARE_CORRECT), (Logits, Logits.BELOW_CLIP),
                 (Logits, Logits.ABOVE_CLIP), (Gradients, Gradients.TOTAL_NORM)))
def rule_zero_gradient(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Samples whose loss gradient is exactly zero (for a clipped cross-entropy: the
    true-class probability in a clipped tail); the plateau loss they imply."""
    if not t.has(*SHARE):
        return []
    steps = t.steps(*SHARE)
    means = [t.mean_at(*SHARE, s) for s in steps]
    if max(means) < THRESHOLD:
        return []
    split = t.has(*SHARE_WRONG)
    decides = SHARE_WRONG if split else SHARE
    fired = next((s for s in steps if value_at(t, decides, s) >= THRESHOLD), None)
    if fired is None:   # only correct samples have a zero gradient: healthy
        return [_correct_note(t, ref, steps, means)]
    sf = t.at(*SHARE, fired)
    ev = dict(fired="share", step=fired, share=float(np.mean(sf)), share_range=[float(np.min(sf)), float(np.max(sf))],
              last_step=steps[-1], last_share=means[-1], max_share=max(means), reference_level=ref.level,
              reference_share_at_step=value_at(ref, SHARE, fired),
              reference_max_share=max((ref.mean_at(*SHARE, s) for s in ref.steps(*SHARE)), default=math.nan))
    s0 = t.at(*SHARE, steps[0])
    ev.update(step0_share=float(np.mean(s0)), step0_share_range=[float(np.min(s0)), float(np.max(s0))])
    all_step = next((s for s, m in zip(steps, means) if m >= 0.999), None)
    ev["first_step_all_zero"] = all_step
    clip = float(t.spec.loss.clip or 0.0) if not t.spec.loss.from_logits else 0.0
    fid = "zero-gradient"
    text = (f"at {t.label}, {pct(ev['share'])} of training samples (seeds: {pct(ev['share_range'][0])}–"
            f"{pct(ev['share_range'][1])}) had an exactly zero loss gradient at step {fired}")
    if split:
        ev["share_wrong"], ev["share_correct"] = value_at(t, SHARE_WRONG, fired), value_at(t, SHARE_CORRECT, fired)
        ev["fired"] = "share_wrong"   # the share that decides (misclassified samples)
        text += f" ({pct(ev['share_wrong'])} misclassified, {pct(ev['share_correct'])} correct)"
    if clip > 0 and t.has(*BELOW_CLIP):
        low0, high0 = value_at(t, BELOW_CLIP, fired), value_at(t, ABOVE_CLIP, fired)
        low_last, high_last = t.mean_at(*BELOW_CLIP, steps[-1]), t.mean_at(*ABOVE_CLIP, steps[-1])
        ev.update(clip=clip, below_clip=low0, above_1_minus_clip=high0, last_below_clip=low_last,
                  last_above_1_minus_clip=high_last)
        if low0 + high0 >= 0.9 * ev["share"]:
            fid = "clipped-zero-gradient"
            text += (f": their true-class probability was below the clip {clip:g} ({pct(low0)}) or above 1 − clip "
                     f"({pct(high0)}), where the clipped cross-entropy has no gradient")
        plateau = -math.log(clip) * low_last
        ev.update(plateau_loss_predicted=plateau, final_train_loss=t.final_train_loss)
        if math.isfinite(t.final_train_loss) and abs(plateau - t.final_train_loss) <= 0.1 * t.final_train_loss:
            text += (f"; at step {steps[-1]} {pct(low_last)} sit below the clip, and −log({clip:g}) × {low_last:.3f} = "
                     f"{plateau:.2f} ≈ the final train loss {t.final_train_loss:.2f}")
    if all_step is not None:
        text += f"; from step {all_step} on, every probed sample was in that region"
    if t.has(*TOTAL_NORM):
        text += _stopped_gradient(t, ev)
    text += (f". At {ref.label}: {pct(ev['reference_share_at_step'])} at step {fired}, at most "
             f"{pct(ev['reference_max_share'])}")
    role = CAUSE
    if (cause := earlier_cause(found, fired)) is not None:   # e.g. a divergence threw the samples into the clip
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    return [Finding(fid, t.level, ev, text + ".", role=role, at=float(fired))]


def _correct_note(t: LevelView, ref: LevelView, steps: list[int], means: list[float]) -> Finding:
    """Many zero gradients, all on correctly classified samples: training done for them."""
    s = steps[int(np.argmax(means))]
    ev = dict(fired="share", step=s, share=max(means), share_correct=value_at(t, SHARE_CORRECT, s),
              share_wrong=value_at(t, SHARE_WRONG, s), reference_level=ref.level,
              reference_share_at_step=value_at(ref, SHARE, s))
    return Finding("zero-gradient-correct", t.level, ev,
                   f"at {t.label}, {pct(ev['share'])} of training samples had an exactly zero loss gradient at step {s}, "
                   f"{pct(ev['share_correct'])} of them correctly classified with full confidence (misclassified: "
                   f"{pct(ev['share_wrong'])}): those samples are learned, which is healthy. At {ref.label}: "
                   f"{pct(ev['reference_share_at_step'])} at step {s}.", role=NOTE)


def _stopped_gradient(t: LevelView, ev: dict) -> str:
    """The step from which the batch gradient was exactly zero at every probed step, and
    the seeds that stopped learning for good (added to ``ev``); the text that says so."""
    gsteps = t.steps(*TOTAL_NORM)
    zero_from = next((s for s in gsteps if all(np.all(t.at(*TOTAL_NORM, u) == 0) for u in gsteps if u >= s)), None)
    ev["batch_gradient_exactly_zero_from_step"] = zero_from
    text = "" if zero_from is None else f"; the batch gradient was exactly 0.0 at every probed step from {zero_from} on"
    # stopped for good: a seed whose last epochs have the very same training loss (said also
    # where a probed step still saw a gradient: the seeds' losses are the evidence, not the probe)
    frozen = sum(1 for ls in t.train_loss_by_seed if len(ls) >= 2 and abs(ls[-1] - ls[-2]) <= 1e-6 * abs(ls[-1]))
    ev["seeds_with_frozen_weights"] = frozen
    if frozen:
        text += (f"; {frozen} of {len(t.train_loss_by_seed)} seeds stopped learning (the same training loss in "
                 f"their last two epochs)")
    return text
