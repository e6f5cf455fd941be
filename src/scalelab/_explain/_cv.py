"""Findings of a cross-validated study, each quoting the numbers that fired it.

* ``seed-variance-dominates`` / ``split-variance-dominates`` (baseline arm, the first one):
  a source dominates when it holds more than half of the variance (the definition of
  "most of it"); the text adds the F test of the split effect (MS_split / MS_res against
  F(K−1, (S−1)(K−1))), so a reader sees whether the split part is distinguishable from seed
  noise at all.
* ``largest-variance-reduction``: the other arm with the smallest total variance, when it is
  below the baseline's; ``no-variance-reduction`` when none is.
* ``best-mean``: the arm with the highest mean validation accuracy, with its 95% CI and
  whether that CI excludes the baseline's mean (the principle for "better", not just
  "higher"); arms whose 95% intervals overlap its own are named as tied with it.
* ``unconstrained-inputs``: the data property behind the seed's share, measured
  (:mod:`._property`): a cause when most of a scored row lies outside the span of the
  training rows and the seed dominates; a note otherwise.
"""

from __future__ import annotations

import math

from scipy import stats

from ._findings import CAUSE, NOTE, Finding
from .._format import pct
from ..data._property import MAJORITY
from ._cv_view import tied_with


def _split_p(d: dict) -> float:
    """p-value of the split effect (F test of the two-way table); NaN without replication."""
    S, K = d["n_seeds"], d["n_splits"]
    if S < 2 or K < 2 or not d["ms_res"] > 0:
        return math.nan
    return float(stats.f.sf(d["ms_split"] / d["ms_res"], K - 1, (S - 1) * (K - 1)))


def _pp(x: float) -> str:
    return f"{100 * x:.1f}%"


def cv_findings(arms: list) -> list[Finding]:
    """The findings of a study's arm summaries (:func:`._cv_view.arm_summaries`)."""
    if not arms:
        return []
    base, out = arms[0], []
    d = base.decomposition
    if d["n_seeds"] > 1 and math.isfinite(d["seed_share"]):
        p = _split_p(d)
        ev = dict(seed_share=d["seed_share"], split_share=d["split_share"], var_seed=d["var_seed"],
                  var_split=d["var_split"], split_effect_p=p, seed_range_median=d["seed_range_median"])
        ftxt = f"; F test of the split effect p = {p:.2g}" if math.isfinite(p) else ""
        if d["seed_share"] > 0.5:
            out.append(Finding("seed-variance-dominates", {"arm": base.name}, ev,
                               f"for {base.name}, the seed dominates: {pct(d['seed_share'])} of the variance of "
                               f"validation accuracy is across seeds at a fixed split (std {math.sqrt(d['var_seed']):.3f}; "
                               f"seeds span {100 * d['seed_range_median']:.1f} points on a typical split), "
                               f"{pct(d['split_share'])} across splits (std {math.sqrt(d['var_split']):.3f}){ftxt}.",
                               CAUSE))
        else:
            out.append(Finding("split-variance-dominates", {"arm": base.name}, ev,
                               f"for {base.name}, the split dominates: {pct(d['split_share'])} of the variance of "
                               f"validation accuracy is across splits (std {math.sqrt(d['var_split']):.3f}), "
                               f"{pct(d['seed_share'])} across seeds at a fixed split (std "
                               f"{math.sqrt(d['var_seed']):.3f}){ftxt}.", CAUSE))
    others = arms[1:]
    if others:
        narrow = min(others, key=lambda a: a.decomposition["var_total"])
        n = narrow.decomposition
        if n["var_total"] < d["var_total"]:
            ratio = math.sqrt(n["var_total"] / d["var_total"]) if d["var_total"] > 0 else math.nan
            out.append(Finding("largest-variance-reduction", {"arm": narrow.name},
                               dict(std_total=math.sqrt(n["var_total"]), baseline_std_total=math.sqrt(d["var_total"]),
                                    std_ratio=ratio, std_seeds=n["std_seeds"], std_splits=n["std_splits"],
                                    mean=n["mean"], baseline_mean=d["mean"]),
                               f"{narrow.name} narrows the spread most: std over all runs "
                               f"{math.sqrt(d['var_total']):.3f} → {math.sqrt(n['var_total']):.3f} "
                               f"({100 * (1 - ratio):.0f}% less; across seeds {d['std_seeds']:.3f} → "
                               f"{n['std_seeds']:.3f}, across splits {d['std_splits']:.3f} → {n['std_splits']:.3f}), "
                               f"at mean {_pp(n['mean'])} against {_pp(d['mean'])}.", NOTE))
        else:
            out.append(Finding("no-variance-reduction", {"arm": base.name},
                               dict(baseline_std_total=math.sqrt(d["var_total"]),
                                    smallest_other=math.sqrt(n["var_total"])),
                               f"no arm narrows the spread of {base.name} (std over all runs "
                               f"{math.sqrt(d['var_total']):.3f}; the narrowest other, {narrow.name}, has "
                               f"{math.sqrt(n['var_total']):.3f}).", NOTE))
        best = max(others, key=lambda a: a.decomposition["mean"])
        m = best.decomposition
        lo, hi = m["ci95"]
        excl = not (lo <= d["mean"] <= hi)
        tied = tied_with(best, arms)
        tie = ""
        if tied:
            tie = ("; tied with " + ", ".join(f"{a.name} ({_pp(a.decomposition['mean'])} [{_pp(a.decomposition['ci95'][0])}"
                                             f", {_pp(a.decomposition['ci95'][1])}])" for a in tied)
                   + ": their 95% intervals overlap its interval, so the data do not rank them")
        out.append(Finding("best-mean", {"arm": best.name},
                           dict(mean=m["mean"], ci95=m["ci95"], baseline_mean=d["mean"], difference=m["mean"] - d["mean"],
                                ci_excludes_baseline=excl, tied_with=[a.name for a in tied]),
                           f"{best.name} has the best mean validation accuracy, {_pp(m['mean'])} [95% CI {_pp(lo)}, "
                           f"{_pp(hi)}], {100 * (m['mean'] - d['mean']):+.1f} points against {base.name}'s "
                           f"{_pp(d['mean'])}; the interval {'excludes' if excl else 'includes'} that mean{tie}.", NOTE))
    prop = base.data_property
    if prop and prop.get("share") == prop.get("share"):
        share, seedy = prop["share"], d["n_seeds"] > 1 and d["seed_share"] > 0.5
        where = (f"{pct(share)} of a validation row (its squared norm about the training mean) lies outside the span "
                 f"of a fold's {prop['n_fit']} training rows (rank {prop['rank']} of p = {prop['p']:,} features)")
        if share > MAJORITY:
            text = (f"the data property behind the seed's part: {where}; the training loss never sees the first "
                    f"layer's weights in those directions, so the seed (initialization and batch order) sets them, and "
                    f"with them the outputs on new rows")
        else:
            text = (f"the training rows constrain most of a new row: only {where}, so the seed has little room; what "
                    f"varies is which rows a split holds")
        out.append(Finding("unconstrained-inputs", {"arm": base.name}, dict(fired="share", **prop),
                           text + ".", CAUSE if share > MAJORITY and seedy else NOTE))
    return out
