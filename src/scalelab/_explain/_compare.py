"""What the rules share to compare a level with the reference: a series' value at the step
a rule fired (the reference's at the same step), and whether a level's final metrics lie
inside the reference's seed range (then nothing is wrong with it)."""

from __future__ import annotations

import math

import numpy as np

from ._view import LevelView


def value_at(v: LevelView, k: tuple[str, str], step: int) -> float:
    """The mean over seeds of series ``k`` at ``step``, or at the last probed step before it
    (a level with another schedule); NaN when the series is missing."""
    if not v.has(*k):
        return math.nan
    steps = [s for s in v.steps(*k) if s <= step] or v.steps(*k)[:1]
    return float(np.nanmean(v.at(*k, steps[-1])))


def first_step(v: LevelView, k: tuple[str, str], holds) -> int | None:
    """The first probed step where ``holds(mean over seeds)`` is true, or None."""
    return next((s for s in v.steps(*k) if holds(float(np.nanmean(v.at(*k, s))))), None)


def seed_values(v: LevelView, name: str) -> np.ndarray:
    vals = np.asarray(v.final.get(name, []), dtype=float)
    return vals[np.isfinite(vals)]


def within_reference_range(t: LevelView, ref: LevelView) -> bool:
    """True when the level's headline metric is inside the reference's range over seeds or
    better: its mean test accuracy (regression: test R²) at least the reference's worst
    seed; without a test metric, its mean final training loss at most the reference's worst
    seed, compared only where both levels minimise the same loss (equal loss specs) on
    targets in the same units: losses of different functions (a trajectory MSE and a grid
    softmax's cross-entropy) are not on one scale, so such a level is not "within range".
    Such a level trained as well as the reference within seed noise, so no rule may call it broken."""
    if t is ref:
        return True
    if t.diverged_steps:
        return False
    for name in ("test_r2", "test_acc"):
        a, r = seed_values(t, name), seed_values(ref, name)
        if len(a) and len(r):
            return float(np.mean(a)) >= float(np.min(r))
    a, r = seed_values(t, "train_loss"), seed_values(ref, "train_loss")
    if len(a) and len(r) and t.spec.target == ref.spec.target and t.spec.loss == ref.spec.loss:
        return float(np.mean(a)) <= float(np.max(r))
    return False


def earlier_cause(found, at: float | None = None) -> "object | None":
    """Of the ``cause`` findings rules ranked before this one found for the level that showed
    no later than ``at`` (the training time this finding showed; None: any), the one that
    showed first (untimed ones after the timed, in rank order): what a symptom (dead units,
    collapse, a mean prediction) is then a consequence of. A cause that showed only after it
    cannot have caused it; taking the first in rank order instead made two symptoms of one
    level name different causes (collapse "of loss-divergence" at update 1, dead units "of
    clipped-zero-gradient" at step 0)."""
    causes = [f for f in found if f.role == "cause" and (at is None or f.at is None or f.at <= at)]
    return min(causes, key=lambda f: math.inf if f.at is None else f.at, default=None)


def in_time_order(findings: list) -> list:
    """The findings with their causes in the order they showed in training (the first one
    the one to act on), the other findings where they were: a cause ranked later that
    showed earlier (a zero gradient at step 0 before a divergence at update 1) comes first.
    Causes without a time keep their rank order after the timed ones."""
    slots = [i for i, f in enumerate(findings) if f.role == "cause"]
    causes = sorted((findings[i] for i in slots), key=lambda f: math.inf if f.at is None else f.at)
    out = list(findings)
    for i, f in zip(slots, causes):
        out[i] = f
    return out
