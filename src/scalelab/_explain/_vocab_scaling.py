"""How a token model's step time grows with its vocabulary: the measured ratio behind "going
from 200,000 to 2,000,000 words almost doubled the epoch time".

For the level with the largest vocabulary among levels that differ only in it (same
optimizer, same everything else), the rule compares its training step with the level of the
next smaller vocabulary: both train the same number of steps per epoch (the data do not
change with V), so the ratio of step times is the ratio of epoch times (training only, the
engine's ``train_s``). Both are per model: a stacked group's step time over its M models.

Principle of the threshold: "grew" is a claim about time, so it needs a ratio of at least
1.5, outside the ±25% repeated identical runs vary on the shared 2-core CPU (the same bound
as :mod:`._embedding_update`); below it the step time did not grow measurably. The text
sets the ratio beside the growth of the bytes the optimizer moves per step (a dense update's
grow with V, a row-sparse one's with the batch only), which is why it grew.
"""

from __future__ import annotations

import json

from ..optim._families import family_of
from ._embedding_update import MIN_SPEEDUP, bytes_per_step, embedding_of, num, step_seconds
from ._findings import NOTE, Finding
from ._registry import register
from ._view import LevelView


def _without_vocabulary(spec) -> str:
    d = spec.model_dump()
    d["data"].pop("vocab", None)
    layers = [dict(x) for x in d["model"]["layers"]]
    layers[0].pop("vocab", None)
    d["model"]["layers"] = layers
    for k in ("name", "question", "seeds", "effective"):
        d.pop(k, None)
    return json.dumps(d, sort_keys=True, default=str)


@register({"vocabulary-step-ratio": NOTE}, rank=46)
def rule_vocabulary_step_ratio(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """The step (and epoch) time ratio from the next smaller vocabulary to this, the largest."""
    emb = embedding_of(t.spec)
    if emb is None or not t.wall_s:
        return []
    key = _without_vocabulary(t.spec)
    same = [p for p in t.peers if embedding_of(p.spec) is not None and p.wall_s and _without_vocabulary(p.spec) == key]
    if max(embedding_of(p.spec)["vocab"] for p in same) != emb["vocab"]:
        return []                                  # only the largest vocabulary answers
    smaller = [p for p in same if embedding_of(p.spec)["vocab"] < emb["vocab"]]
    if not smaller:
        return []
    prev = max(smaller, key=lambda p: embedding_of(p.spec)["vocab"])
    V0, V1 = embedding_of(prev.spec)["vocab"], emb["vocab"]
    s0, s1 = step_seconds(prev), step_seconds(t)
    if not (s0 > 0 and s1 > 0):
        return []
    ratio = s1 / s0
    b0, b1 = bytes_per_step(prev.spec), bytes_per_step(t.spec)
    name = t.spec.optim.name
    dense = not family_of(name).row_sparse
    grew = ratio >= MIN_SPEEDUP
    ev = dict(fired="ratio", vocab_from=V0, vocab_to=V1, step_s_from=s0, step_s_to=s1, ratio=ratio,
              bytes_from=b0, bytes_to=b1, bytes_ratio=b1 / b0, optimizer=name, dense=dense, grew=grew,
              from_level=prev.level)
    why = (f"{name} updates every row of the table on every step, so the bytes it moves per model and step grew "
           f"{b1 / b0:.0f}× ({num(b0 / 1e6)} → {num(b1 / 1e6)} MB) while a batch still uses the same rows"
           if dense else
           f"{name} updates only the rows a batch uses, so its bytes per step stayed {num(b1 / 1e6)} MB")
    text = (f"from {V0:,} to {V1:,} words ({V1 / V0:g}× the rows) with {name}, the training step went from "
            f"{num(s0 * 1e3)} to {num(s1 * 1e3)} ms per model: {ratio:.1f}× measured here, and an epoch "
            f"(the same steps at both sizes) took {ratio:.1f}× as long; "
            + ("it grew" if grew else f"it did not grow beyond timing noise (under {MIN_SPEEDUP}×)")
            + f" because {why}")
    return [Finding("vocabulary-step-ratio", t.level, ev, text + ".")]
