"""A remedy's measured effect: the metric before → after on the same seeds, paired.

Principle of the verdict: a remedy *helps* when the seeds' paired improvement is told apart
from seed noise at 95%: the 95% confidence interval of the mean paired difference (Student's
t over the seeds) lies entirely on the improving side, or every one of at least five seeds
improved (a sign test: 1/32 < 0.05). The sign test decides where an interval cannot be formed
(a diverged seed has no finite difference) and where the t interval is blown open by one
seed's outlying value (a validation R² of -4000 beside -10: heavy tails the t interval
assumes away; the sign test assumes nothing about them). Anything less does not help, and its
finding is demoted to a note.
"""

from __future__ import annotations

import math

import numpy as np

SIGN_TEST_SEEDS = 5


def _worse(higher: bool) -> float:
    return -math.inf if higher else math.inf


def paired_effect(before: dict, after: dict, higher: bool) -> dict:
    """``before``/``after``: seed -> the metric's value (NaN or inf: the seed diverged);
    ``higher``: higher is better. The seeds both arms have are paired."""
    seeds = sorted(set(before) & set(after))
    b = np.array([before[s] for s in seeds], dtype=float)
    a = np.array([after[s] for s in seeds], dtype=float)
    bw = np.where(np.isfinite(b), b, _worse(higher))   # a diverged seed is the worst value there is
    aw = np.where(np.isfinite(a), a, _worse(higher))
    with np.errstate(invalid="ignore"):
        gain = (aw - bw) if higher else (bw - aw)        # > 0: the remedy improved this seed
    improved = int(np.sum(np.nan_to_num(gain, nan=0.0) > 0))
    n = len(seeds)
    fin = np.isfinite(b) & np.isfinite(a)
    diff = (a - b)[fin]
    ci = None
    if n >= 2 and fin.all():
        from scipy.stats import t

        half = float(t.ppf(0.975, n - 1) * np.std(diff, ddof=1) / math.sqrt(n))
        ci = [float(diff.mean()) - half, float(diff.mean()) + half]
    helps = n >= SIGN_TEST_SEEDS and improved == n
    if ci is not None:
        helps |= (ci[0] > 0) if higher else (ci[1] < 0)
    return dict(before=_mean(b), after=_mean(a), before_std=_std(b), after_std=_std(a), diff_ci95=ci,
                seeds_improved=improved, seeds=n, seeds_diverged_before=int(np.sum(~np.isfinite(b))),
                seeds_diverged_after=int(np.sum(~np.isfinite(a))), helps=bool(helps),
                before_by_seed=[_num(x) for x in b], after_by_seed=[_num(x) for x in a], seed_ids=seeds)


def _num(x: float):
    return float(x) if math.isfinite(x) else None


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def _std(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1)) if len(x) >= 2 else 0.0 if len(x) == 1 else math.nan


def verified_record(words: str, change: dict, metric: str, effect: dict, resolved: bool | None,
                    signal: dict | None) -> dict:
    """What ``explain --format json`` carries as a cause's ``verified``."""
    return dict(remedy=words, change=change, metric=metric, before=effect["before"],
                after=effect["after"], before_std=effect["before_std"], after_std=effect["after_std"],
                diff_ci95=effect["diff_ci95"], seeds_improved=effect["seeds_improved"], seeds=effect["seeds"],
                resolved=resolved, helps=effect["helps"], signal=signal,
                before_by_seed=effect["before_by_seed"], after_by_seed=effect["after_by_seed"])


def effect_text(v: dict) -> str:
    """One line: the remedy, before → after (± seed std), the CI, seeds improved, the signal."""
    from ._format import fmt

    ci = v.get("diff_ci95")
    ci_s = f", 95% CI of the change [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]" if ci else ""
    sig = v.get("signal") or {}
    sig_s = ""
    if sig:
        sig_s = f"; {sig['name']} {fmt(sig['before'], 3)} → {fmt(sig['after'], 3)}"
    res = {True: "; the finding's signal went away", False: "; the finding still fires", None: ""}[v.get("resolved")]
    return (f"{v['remedy']}: {v['metric']} {fmt(v['before'], 3)} ± {fmt(v['before_std'], 2)} → "
            f"{fmt(v['after'], 3)} ± {fmt(v['after_std'], 2)} (seed std){ci_s}; {v['seeds_improved']} of "
            f"{v['seeds']} seeds improved{sig_s}{res}")
