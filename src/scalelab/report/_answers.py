"""One plain sentence per level, computed from the run: how the level did against the best
level (its headline metric, both numbers), and why, from the first ``cause`` finding of
that level (else a ``consequence``). The report and ``scalelab explain`` open with these
sentences; the findings and numbers behind each stay one click (or one line) away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._explain._cv import cv_findings
from .._explain._cv_view import ArmSummary, arm_summaries, bayes, is_cv_study, remedies, setting, tied_with
from .._explain._findings import CAUSE, CONSEQUENCE, Finding
from .._explain._run import explain_views, reference, shared_metric, study_targets
from .._explain._view import LevelView
from .._format import fmt, level_description, pct


@dataclass
class Answer:
    """The sentence for one level, with what it was computed from."""

    level: dict
    label: str
    description: str
    text: str
    metric: str                      # the headline metric's name ("test accuracy", "test R²", ...)
    value: float                     # this level's value of it (mean over finished seeds; R²: median)
    best_value: float                # the best level's
    best: bool                       # this is the best level
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(level=self.level, text=self.text, metric=self.metric, value=self.value,
                    best_value=self.best_value, best=self.best, findings=[f.id for f in self.findings])


def _headline(views: list[LevelView]) -> tuple[str, callable, bool]:
    """The metric a sentence quotes: (name, value of a view, higher is better). The one the
    levels are ranked by (:func:`shared_metric`); a study ranked by its shared training loss
    quotes its test accuracy where it has one (as before), the best level being the lowest loss."""
    name, value, higher = shared_metric(views)
    if name == "final train loss" and any(math.isfinite(v.final_test_acc) for v in views):
        return "test accuracy", lambda v: v.final_test_acc, True
    if "minFDE_" in name:   # quoted without the ADE tie-break
        key = ("val" if name.startswith("validation") else "test") + "_min_fde_" + name.rsplit("_", 1)[1]
        value = lambda v: float(np.nanmean(v.final[key])) if key in v.final else math.nan
    return name, value, higher


def _verdict(x: float, best: float, higher: bool) -> str:
    """How far a level is from the best, with the number: within 2% "about as good", else the
    relative shortfall ("17% worse"; "much worse" beyond 20%). "A little worse" was said of
    gaps up to 20%, which a reader does not call little."""
    if not math.isfinite(x):
        return "has no finished seed to compare"
    gap = (best - x) if higher else (x - best)
    rel = gap / max(abs(best), 1e-12)
    if rel <= 0.02:
        return "about as good as the best level"
    if rel <= 0.2:
        return f"{100 * rel:.0f}% worse"
    if higher or best <= 0:
        return f"much worse ({100 * rel:.0f}% {'lower' if higher else 'higher'})"
    return f"much worse ({fmt(x / best, 3)}× the best)"


def _clause(f: Finding, label: str) -> str:
    """A finding's first clause (up to the first "; " outside brackets), without its leading
    "at LEVEL, "."""
    text = f.text
    for prefix in (f"at {label}, ", f"at {label}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "([" and 1 or -(ch in ")]")
        if depth == 0 and (text.startswith("; ", i) or text.startswith(". At ", i)):
            return text[:i]
    return text.rstrip(".")


def _named(label: str, desc: str) -> str:
    """A level as a sentence names it: its description first when the spec gives one."""
    return f"{desc[:1].upper()}{desc[1:]} ({label})" if desc else label


def answer_views(views: list[LevelView], findings: list[Finding], descriptions: dict | None = None,
                 targets: list[LevelView] | None = None) -> list[Answer]:
    """One :class:`Answer` per level of ``targets`` (default: every level), the best level
    first, from the levels' views and the findings :func:`explain_views` gave for them."""
    ref = reference(views)
    name, value, higher = _headline(views)
    best = value(ref)
    losses = sorted({v.spec.loss.name for v in views if v.spec is not None})
    out = []
    for v in targets or views:
        mine = [f for f in findings if f.level == v.level]
        desc = level_description(v.level, descriptions)
        who = _named(v.label, desc)
        x = value(v)
        cause = next((f for f in mine if f.role == CAUSE and f.id != "diverged"), None)
        cons = next((f for f in mine if f.role == CONSEQUENCE), None)
        n_div = len(v.diverged_steps)
        if n_div == v.n_seeds:
            text = (f"{who}: every seed diverged (loss not finite from step {min(v.diverged_steps)}); "
                    f"the best level reaches {name} {fmt(best, 3)}.")
        elif v is ref:
            text = f"{who}: best, {name} {fmt(x, 3)}"
            if len(losses) > 1:
                text += (f" (the levels minimize different losses, {', '.join(losses)}, which do not compare: "
                         f"ranked by {name}, which all of them have)")
            text += f"; even so, {_clause(cause, v.label)}." if cause else \
                ("; the probes found no pathology." if any(f.id == "no-pathology" for f in mine) else ".")
        else:
            verdict = _verdict(x, best, higher)
            text = f"{who}: {verdict}, {name} {fmt(x, 3)} against {fmt(best, 3)} at the best level"
            why = cause or cons
            if why is not None:
                text += f"; {'the cause' if why is cause and not verdict.startswith('about') else 'seen'}: {_clause(why, v.label)}"
            text += "."
        if 0 < n_div < v.n_seeds:
            text = text[:-1] + f"; {n_div} of {v.n_seeds} seeds diverged."
        out.append(Answer(v.level, v.label, desc, text, name, x, best, v is ref, mine))
    return sorted(out, key=lambda a: not a.best)   # the best level first: the others read against it


def answers(store, study: str, trial_id: int | None = None) -> tuple[list[Answer], list[Finding]]:
    """The answer sentences and the findings of a stored study (or of one trial)."""
    if trial_id is None and is_cv_study(store, study):   # arms × seeds × splits: one answer for the study
        return cv_answers(store, study)
    views, targets = study_targets(store, study, trial_id)
    findings = explain_views(views, targets)
    descriptions = store.require_study(study)["spec"].get("descriptions", {})
    return answer_views(views, findings, descriptions, targets), findings


# ----------------------------------------------------------------------------- cross-validated studies

def _p(x: float) -> str:
    return f"{100 * x:.1f}%"


def answer(spec: dict, arms: list[ArmSummary]) -> str:
    """The thread's question answered in one sentence with the study's numbers."""
    if not arms:
        return "No trials stored yet."
    base, narrow, best = remedies(arms)
    d = base.decomposition
    b = bayes(spec)
    text = (f"With {setting(spec)}, the {base.name} arm's validation accuracy ranged from {_p(d['min'])} to "
            f"{_p(d['max'])} over {d['n_seeds']} seeds × {d['n_splits']} splits (on one split the seeds alone span "
            f"{100 * d['seed_range_median']:.1f} points, median over splits); {pct(d['seed_share'])} of its variance "
            f"comes from the seed and {pct(d['split_share'])} from the split")
    if base.test_acc:
        text += (f"; on the held-out test rows it scored {_p(float(np.mean(base.test_acc)))}"
                 + (f", std {base.test_std:.3f} across seeds (validation folds: {d['std_seeds']:.3f})"
                    if math.isfinite(base.test_std) else ""))
    if narrow is not None:
        n = narrow.decomposition
        text += (f"; {narrow.name} narrows the spread most (std over all runs "
                 f"{d['std_total']:.3f} → {n['std_total']:.3f})")
        m = best.decomposition
        text += (f", and {best.name} has the best mean, {_p(m['mean'])} [95% CI {_p(m['ci95'][0])}, "
                 f"{_p(m['ci95'][1])}] against {_p(d['mean'])}")
        tied = tied_with(best, arms)
        if tied:
            text += f", tied with {', '.join(a.name for a in tied)} (overlapping 95% intervals)"
    if b is not None:
        text += f" (Bayes accuracy {_p(b)})"
    return text + "."


def cv_answers(store, study: str):
    """(answers, findings) as :func:`answers` gives them: one answer for the
    whole study (the first arm is its baseline), and the study's findings."""
    spec, arms = arm_summaries(store, study)
    findings = cv_findings(arms)
    if not arms:
        return [], findings
    base, _, best = remedies(arms)
    best = best or base
    a = Answer(level={"arm": base.name}, label=f"arm={base.name}", description=base.description,
               text=answer(spec, arms), metric="validation accuracy", value=base.decomposition["mean"],
               best_value=best.decomposition["mean"], best=best is base, findings=findings)
    return [a], findings
