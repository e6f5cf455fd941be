"""The checks a watched run made before its first step (the model, loss, optimizer and
data the user's script gave it; see :mod:`scalelab.attach._checks`), as findings: they
are stored with the run (``env["checks"]``) and shown first, since they were known
before any update. A level's seeds report a check once (with how many seeds showed it).

In a study of one level every check is said. In a study of several levels the levels are
explained by comparing them, and a check is said only where the run itself shows its
consequence (:func:`consequence`): inputs hundreds of times the unit scale saturate the
softmax before any update, which on torch and JAX sends the samples into Keras's clip
(the clipped zero gradient is then its consequence) and on TensorFlow, whose loss reads
the softmax's logits and has no clip, gives a loss of hundreds: the same root cause on
every backend, through a different mechanism.
"""

from __future__ import annotations

import math

from ..probes._records import Logits, Loss
from ._findings import CAUSE, NOTE, Finding
from ._one_run_refs import one_level
from ._registry import register
from ._view import LevelView, key

IDS = {"output-loss-mismatch": CAUSE, "label-encoding-mismatch": CAUSE, "fractional-labels": CAUSE,
       "labels-out-of-range": CAUSE, "one-class-labels": CAUSE, "class-imbalance": NOTE, "input-scale": CAUSE,
       "input-offset": CAUSE, "constant-features": NOTE, "non-finite-data": CAUSE, "target-scale": CAUSE,
       "no-nonlinearity": CAUSE, "learning-rate": CAUSE, "sorted-labels": CAUSE, "frozen-model": CAUSE,
       "optimizer-params": CAUSE, "missing-zero-grad": CAUSE, "target-shape-broadcast": CAUSE, "symmetric-init": CAUSE,
       "dead-units-at-start": CAUSE, "unregistered-params": CAUSE, "saturated-at-start": CAUSE}

RANGE = key(Logits, Logits.MEDIAN_RANGE)
PROBE_LOSS = key(Loss, Loss.PROBE_BATCH)
# A softmax whose logits span more than -ln(float32's epsilon 2^-23) = 15.9 gives every class but the top one
# under 1.19e-7 of its probability: the top class's probability is 1.0 in float32 and the output no longer
# moves with the logits (Keras's clip of 1e-7 sits at the same place, -ln(1e-7) = 16.1). The median sample
# of the probe batch past it before the first update: the typical sample starts saturated, not a few outliers.
SATURATED_RANGE = 23 * math.log(2)


@register(IDS, rank=2, on_diverged=True, needs=((Logits, Logits.MEDIAN_RANGE), (Loss, Loss.PROBE_BATCH)))
def rule_checks_before_first_step(t: LevelView, ref: LevelView | None = None, found=()) -> list[Finding]:
    """Each check that fired on a seed of the level, once, with its own role and its fix; in a
    study of several levels, only a check whose consequence the run shows."""
    alone = one_level(t)
    seen: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for env in t.envs:
        for c in env.get("checks") or []:
            if c.get("id") not in IDS:
                continue
            counts[c["id"]] = counts.get(c["id"], 0) + 1
            if c["id"] not in seen:
                seen[c["id"]] = Finding(c["id"], t.level, dict(c.get("evidence") or {}), "", role=c.get("role", ""),
                                        at=-1.0)
                seen[c["id"]].text = c.get("text", "")
    out = []
    for fid, f in seen.items():
        shown = consequence(t, f)
        if not (alone or shown):
            continue
        n = len(t.envs)
        where = f"at {t.label}, before training" + (f" ({counts[fid]} of {n} seeds)" if n > 1 else "")
        f.evidence["seeds"] = counts[fid]
        if shown:   # the run's numbers after the claim, before its fix
            head, sep, fix = f.text.partition("; fix: ")
            f.text = f"{head.rstrip('.')}; {shown}{sep}{fix}" if sep else f"{f.text.rstrip('.')}; {shown}."
        f.text = f"{where}: {f.text}"
        if shown and not alone:
            f.evidence["fired"] = "median_logit_range"
        out.append(f)
    return out


def consequence(t: LevelView, f: Finding) -> str:
    """What the run shows of a check's claim (added to ``f.evidence``), or "": for the input
    scale, a softmax saturated on the median probe sample at the first probed step
    (before any update: the inputs and the initialization alone)."""
    if f.id != "input-scale" or not t.has(*RANGE):
        return ""
    step = t.steps(*RANGE)[0]
    spread = t.mean_at(*RANGE, step)
    if not spread > SATURATED_RANGE:
        return ""
    k = len(t.names(Logits.name, Logits.PRED_SHARE)) or 2
    loss = t.mean_at(*PROBE_LOSS, step) if t.has(*PROBE_LOSS) and step in t.steps(*PROBE_LOSS) else math.nan
    f.evidence.update(median_logit_range=spread, saturated_range=SATURATED_RANGE, logit_step=step,
                      probe_loss=loss, ln_k=math.log(k))
    text = (f"this run shows it: at step {step} the median logit range on the probe batch is {spread:.0f}, past "
            f"{SATURATED_RANGE:.1f} (-ln of float32's epsilon), so the softmax starts saturated")
    if math.isfinite(loss):
        text += f" and the probe loss is {loss:.1f} against ln {k} = {math.log(k):.2f} for a uniform guess"
    return text
