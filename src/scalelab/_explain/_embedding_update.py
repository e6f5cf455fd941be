"""Where a token model's step goes: a dense optimizer over embedding rows the batch never used.

A batch of B sequences of T ids uses at most B·T rows of a V × d embedding table. A dense
optimizer still forms a (V, d) gradient (one value written per table value) and, for every
row on every step, reads the weight, the gradient and its n moment buffers and writes the
weight and the buffers: 4 + 2n values per table value (Adam, n = 2: 8 values, 32·V·d bytes in
float32; SGD, n = 0: reads p and g, writes p, plus the gradient: 16·V·d bytes). A row-sparse
update (lazy Adam, sparse SGD) moves 6 + 2n values per value of the used rows only: the
rows gathered (read, write), their gradient written, and the same update (lazy Adam 40,
sparse SGD 24 bytes per float32 value). n is the number of moment buffers of the optimizer
family (:mod:`scalelab.optim._families`). The rule pairs a dense-update level with the level
that differs only in a row-sparse optimizer and reads both levels' measured time per
training step (the engine's training-only seconds, ``train_s``, over the steps).

Principle of the thresholds: the finding is a claim about time, so it fires only when
(1) the measured difference is beyond timing noise: the dense step is at least 1.5× the
row-sparse step, i.e. at least a third of the dense step is spent on work the row-sparse
step does not do (repeated identical runs on the shared 2-core CPU varied by up to ±25%,
so a 1.5× gap is outside what noise produces between two levels); and (2) the byte count
explains it: the dense step moves at least 10× the bytes of the row-sparse one (otherwise
the extra time has another cause, e.g. a small table where the LSTM dominates). The text
quotes the share, the bytes of both, the speed-up and the accuracy change (after the first
epoch, a fixed number of steps, and at the end), so the cost of the remedy sits next to its
speed.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .._format import fmt, pct
from ..optim._families import family_of
from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView

# The remedy in the thread's Keras terms: which settings avoid the dense update of the whole
# table, and what each costs (TensorFlow backend: an Embedding's gradient is IndexedSlices,
# the batch's rows only, and what the optimizer does with it decides the cost).
_KERAS_OTHERS = ("Embedding(trainable=False) with pre-trained vectors (plus a small trainable table for domain words, "
                 "as the thread's answer suggests) removes the table's update, and those rows stop learning; a smaller "
                 "vocabulary (TextVectorization(max_tokens=...) or a Hashing layer) shrinks the table itself, and rare "
                 "words then share rows")
KERAS_REMEDY = {
    "adam": ("In Keras: tfa.optimizers.LazyAdam (TensorFlow Addons, unmaintained since 2024) is this lazy update, with "
             "the same saving and the same change (an unused row's moments do not decay); a Keras SGD optimizer applies "
             "the Embedding's sparse gradient to the used rows only, exactly, but without Adam's per-weight step "
             "sizes; " + _KERAS_OTHERS),
    "sgd": ("In Keras: plain SGD (as Keras defaults it, no velocity term) already applies the Embedding's sparse gradient to the used rows only "
            "(exactly this update); " + _KERAS_OTHERS),
}
MIN_SPEEDUP = 1.5          # dense / row-sparse step time
MIN_BYTES_RATIO = 10.0     # dense / row-sparse bytes per step
TEXT_DEFAULT_SAMPLES = 2000   # the text generator's default training samples


def num(x: float) -> str:
    """3 significant figures without an exponent: 12.8, 192, 4,331."""
    return f"{x:,.0f}" if abs(x) >= 100 else fmt(x, 3)


def embedding_of(spec) -> dict | None:
    """The trainable embedding layer's config at the front of a layers model, else None."""
    layers = spec.model.layers if spec.model.kind == "layers" else []
    if not layers or layers[0].get("kind") != "embedding" or not layers[0].get("trainable", True):
        return None
    return layers[0]


def steps_of(spec) -> int:
    """Training steps per model: epochs × ceil(training rows / batch)."""
    n = spec.data.n_samples or TEXT_DEFAULT_SAMPLES
    if spec.data.train_subset:
        n = min(n, spec.data.train_subset)
    v = spec.data.validation
    n -= int(round(v * n)) if v < 1 else int(v)
    return spec.train.epochs * math.ceil(max(n, 1) / spec.train.batch_size)


def step_seconds(v: LevelView) -> float:
    """Seconds per training step, median over seeds: the training steps' own time as the
    engine records it (``train_s``: forward, backward and optimizer, no setup, evaluation or
    hooks), over the steps. Trials stored before it was recorded fall back to their whole
    wall time (setup and evaluation included; that dilutes the dense/row-sparse ratio)."""
    train = [w for w in v.train_s if w is not None and w > 0]
    walls = train or [w for w in v.wall_s if w is not None and w > 0]
    return float(np.median(walls)) / steps_of(v.spec) if walls else math.nan


def values_per_value(spec) -> int:
    """Values read or written per table value and step by the spec's optimizer: 4 + 2n dense
    (gradient formed; p, g and n moments read; p and n moments written), 6 + 2n row-sparse
    (rows gathered and their gradient written, then the same update), n moment buffers."""
    family = family_of(spec.optim.name)
    n = len(family.moments)
    return (6 if family.row_sparse else 4) + 2 * n


def bytes_per_step(spec) -> float:
    """Bytes of the embedding table's gradient and update per model and step: every row for a
    dense optimizer, the batch's rows (at most batch × sequence length) for a row-sparse one."""
    emb = embedding_of(spec)
    V, d = emb["vocab"], emb["dim"]
    rows = V if not family_of(spec.optim.name).row_sparse else min(V, spec.train.batch_size * spec.data.seq_len)
    itemsize = 8 if spec.train.dtype == "float64" else 4
    return float(values_per_value(spec) * itemsize * rows * d)


def _without_optimizer_name(spec) -> str:
    d = spec.model_dump()
    d["optim"].pop("name")
    for k in ("name", "question", "seeds", "effective"):
        d.pop(k, None)
    return json.dumps(d, sort_keys=True, default=str)


def _acc(v: LevelView, epoch: int) -> float:
    vals = [e[epoch]["test_acc"] for e in v.epochs_by_seed if len(e) > epoch and e[epoch].get("test_acc") is not None]
    return float(np.mean(vals)) if vals else math.nan


@register({"dense-update-over-unused-rows": CAUSE}, rank=45)
def rule_dense_update_over_unused_rows(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """A dense optimizer over a large embedding table: the share of the step spent on rows
    the batch never used, the bytes it moves, and the row-sparse remedy's measured speed-up
    and accuracy change."""
    emb = embedding_of(t.spec)
    if emb is None or family_of(t.spec.optim.name).row_sparse:
        return []
    key = _without_optimizer_name(t.spec)
    chain = family_of(t.spec.optim.name).chain
    # the remedy: the row-sparse form of the same optimizer (same reference chain: adam ↔ lazy_adam,
    # sgd ↔ sparse_sgd), everything else equal
    peer = next((p for p in t.peers if p is not t and family_of(p.spec.optim.name).row_sparse
                 and family_of(p.spec.optim.name).chain is chain
                 and _without_optimizer_name(p.spec) == key and p.wall_s), None)
    if peer is None:
        return []
    td, ts = step_seconds(t), step_seconds(peer)
    bd, bs = bytes_per_step(t.spec), bytes_per_step(peer.spec)
    if not (td > 0 and ts > 0) or td / ts < MIN_SPEEDUP or bd / bs < MIN_BYTES_RATIO:
        return []
    share = (td - ts) / td
    a1, a1s = _acc(t, 0), _acc(peer, 0)
    af, afs = _acc(t, -1), _acc(peer, -1)
    rows = min(emb["vocab"], t.spec.train.batch_size * t.spec.data.seq_len)
    ev = dict(fired="speedup", step_s=td, row_sparse_step_s=ts, speedup=td / ts, share_unused_rows=share, bytes_per_step=bd,
              row_sparse_bytes_per_step=bs, vocab=emb["vocab"], dim=emb["dim"], rows_per_batch_max=rows,
              remedy=peer.spec.optim.name, remedy_level=peer.level, test_acc_epoch1=a1, remedy_test_acc_epoch1=a1s,
              test_acc_final=af, remedy_test_acc_final=afs, epochs=t.spec.train.epochs)
    fam, peer_fam = family_of(t.spec.optim.name), family_of(peer.spec.optim.name)
    state = "the moments and weights" if fam.moments else "the weights"
    if peer_fam.moments:
        math_note = f"unused rows skip {fam.name.capitalize()}'s moment decay"
    else:
        # the table is no kernel: no L2 or weight decay reaches it, so an unused row's dense step is zero
        math_note = f"the same update as dense {fam.name}: an unused row's gradient is zero"
    text = (f"at {t.label}, {pct(share)} of each training step ({num(td * 1e3)} ms per model and step, against "
            f"{num(ts * 1e3)} ms at {peer.label}) goes to work on embedding rows the batch never used: "
            f"{t.spec.optim.name} forms a dense gradient and updates {state} of all "
            f"{emb['vocab']:,} rows × {emb['dim']} on every step, about {num(bd / 1e6)} MB read and written "
            f"per model and step, while a batch uses at most {rows:,} rows ({fmt(bs / 1e6, 3)} MB). "
            f"Remedy: optim.name = '{peer.spec.optim.name}' (only the used rows' {state.split(' ', 1)[1]}; "
            f"{math_note}): {td / ts:.1f}× faster per step; test accuracy {a1:.3f} → {a1s:.3f} after "
            f"epoch 1 and {af:.3f} → {afs:.3f} after epoch {t.spec.train.epochs} (mean over seeds)")
    keras = KERAS_REMEDY.get(fam.name)
    if keras:
        text += f". {keras}"
        ev["keras_remedy"] = keras
    return [Finding("dense-update-over-unused-rows", t.level, ev, text + ".")]
