"""A stored cross-validated study read back: per arm the seeds × splits table of validation
accuracy, its variance decomposition, the hyperparameter chosen on each outer fold and the
one test score; the one-sentence answer; the per-trial listing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._format import pct
from ._decompose import decompose

ESTIMATOR_WORDS = {"network": "network", "ensemble": "seed ensemble", "svm-rbf": "RBF SVM",
                   "logreg-l2": "L2 logistic regression", "logreg-l1": "L1 logistic regression"}


@dataclass
class ArmSummary:
    name: str
    description: str
    estimator: str
    select: str | None
    table: np.ndarray                 # seeds × splits, validation accuracy
    seeds: list
    splits: list                      # (repeat, fold)
    decomposition: dict
    chosen: dict = field(default_factory=dict)        # (repeat, fold) -> value
    test_acc: list = field(default_factory=list)
    test_chosen: object = None
    n_diverged: int = 0
    data_property: dict | None = None   # the first arm's: what in the data drives the spread (_property.py)

    @property
    def test_std(self) -> float:
        """Spread of the test accuracy across seeds (the one test split): the std across seeds
        at a fixed split, as for the validation folds (:func:`decompose` of a seeds × 1 table)."""
        if len(self.test_acc) < 2:
            return math.nan
        return decompose(np.asarray(self.test_acc, dtype=float)[:, None])["std_seeds"]

    def as_dict(self) -> dict:
        d = self.decomposition
        return dict(arm=self.name, description=self.description, estimator=self.estimator, select=self.select,
                    n_seeds=len(self.seeds), n_splits=len(self.splits), mean=d["mean"], std_seeds=d["std_seeds"],
                    std_splits=d["std_splits"], std_total=d["std_total"], min=d["min"], max=d["max"], ci95=d["ci95"],
                    seed_range_median=d["seed_range_median"], seed_share=d["seed_share"],
                    split_share=d["split_share"], var_seed=d["var_seed"], var_split=d["var_split"],
                    chosen={f"repeat {r} fold {f}": v for (r, f), v in sorted(self.chosen.items())},
                    test_acc=float(np.mean(self.test_acc)) if self.test_acc else None,
                    test_std_seeds=None if math.isnan(self.test_std) else self.test_std, test_runs=len(self.test_acc),
                    test_chosen=self.test_chosen, n_diverged=self.n_diverged)


def is_cv_study(store, study: str) -> bool:
    info = store.latest_study(study)
    return info is not None and info["spec"].get("cv") is not None


def arm_summaries(store, study: str) -> tuple[dict, list[ArmSummary]]:
    """The study's spec and one :class:`ArmSummary` per arm, in the spec's order."""
    info = store.require_study(study)
    spec = info["spec"]
    trials = store.trials(info["id"])
    descriptions = spec.get("descriptions") or {}
    by_arm: dict[str, list] = {}
    for t in trials:
        by_arm.setdefault(t["level"]["arm"], []).append(t)
    order = list(spec.get("arms") or {}) or ["base"]
    out = []
    for name in [a for a in order if a in by_arm]:
        ts = by_arm[name]
        outer = [t for t in ts if t["level"].get("phase") == "outer"]
        if not outer:
            continue
        cv = outer[0]["spec"]["cv"]
        seeds = sorted({t["seed"] for t in outer})
        splits = sorted({(t["level"]["repeat"], t["level"]["fold"]) for t in outer})
        A = np.full((len(seeds), len(splits)), np.nan)
        chosen = {}
        for t in outer:
            acc = store.epochs(t["id"])[-1]["val_acc"]
            A[seeds.index(t["seed"]), splits.index((t["level"]["repeat"], t["level"]["fold"]))] = acc
            if "chosen" in t["level"]:
                chosen[(t["level"]["repeat"], t["level"]["fold"])] = t["level"]["chosen"]
        full = A[:, np.isfinite(A).all(0)] if np.isfinite(A).any() else A
        dec = decompose(full)
        dec["ci95"] = [max(0.0, dec["ci95"][0]), min(1.0, dec["ci95"][1])]   # an accuracy stays in [0, 1]
        test = [t for t in ts if t["level"].get("phase") == "test"]
        out.append(ArmSummary(
            name=name, description=descriptions.get(f"arm={name}", ""), estimator=cv["estimator"],
            select=cv.get("select"), table=full, seeds=seeds, splits=splits, decomposition=dec,
            chosen=chosen, test_acc=[store.epochs(t["id"])[-1]["test_acc"] for t in test],
            test_chosen=test[0]["level"].get("chosen") if test else None,
            n_diverged=sum(t["status"] == "diverged" for t in outer)))
    if out:
        from ..data._property import data_property

        out[0].data_property = data_property(spec)
    return spec, out


def setting(spec: dict) -> str:
    """The study's data in words."""
    data = spec.get("data", {})
    g = data.get("generator") or {}
    cv = spec.get("cv") or {}
    folds = cv.get("folds", 5)
    if data.get("dataset") == "pn-synthetic":
        n, p = g.get("n", 100), g.get("p", 10_000)
        n_dev = n - max(1, round(n * cv.get("test_fraction", 0.2)))
        return (f"n = {n} samples, p = {p:,} features, {n_dev * (folds - 1) // folds} training rows per fold")
    if data.get("dataset") == "fmnist-pair":
        return f"{g.get('n', 100)} Fashion-MNIST images of classes {g.get('classes', [0, 6])}, p = 784"
    return f"{data.get('path')}"


def bayes(spec: dict) -> float | None:
    data = spec.get("data", {})
    if data.get("dataset") != "pn-synthetic":
        return None
    from .._spec._cv import GeneratorSpec
    from ..data._pn import bayes_accuracy, generator_args

    return bayes_accuracy(**generator_args(GeneratorSpec.model_validate(data.get("generator") or {})))


def remedies(arms: list[ArmSummary]) -> tuple[ArmSummary, ArmSummary | None, ArmSummary | None]:
    """(baseline = the first arm, the arm with the smallest total variance, the arm with the best mean)."""
    base = arms[0]
    others = arms[1:]
    if not others:
        return base, None, None
    narrow = min(others, key=lambda a: a.decomposition["var_total"])
    best = max(others, key=lambda a: a.decomposition["mean"])
    return base, narrow, best


def tied_with(best: ArmSummary, arms: list[ArmSummary]) -> list[ArmSummary]:
    """The arms whose 95% interval of the mean overlaps ``best``'s: the data cannot rank them
    against it, so they are a tie, not a ranking."""
    lo, hi = best.decomposition["ci95"]
    return [a for a in arms if a is not best and a.decomposition["ci95"][0] <= hi and lo <= a.decomposition["ci95"][1]]


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


def trial_listing(store, study: str) -> list[dict]:
    """Every trial of the study: arm, phase, repeat, fold, inner fold, seed, the value it ran
    with, and its metrics (``show --format json``)."""
    info = store.require_study(study)
    rows = []
    for t in store.trials(info["id"]):
        lv, last = t["level"], (store.epochs(t["id"]) or [{}])[-1]
        num = lambda k: None if last.get(k) is None or not math.isfinite(last[k]) else last[k]  # noqa: E731
        rows.append(dict(id=t["id"], arm=lv.get("arm"), phase=lv.get("phase"), repeat=lv.get("repeat"),
                         fold=lv.get("fold"), inner=lv.get("inner"), seed=t["seed"],
                         value=lv.get("chosen", lv.get("value")), status=t["status"],
                         train_acc=num("train_acc"), val_acc=num("val_acc"), val_loss=num("val_loss"),
                         test_acc=num("test_acc"), test_loss=num("test_loss"), epochs=last.get("epoch")))
    return rows


def summary_json(store, study: str) -> dict:
    spec, arms = arm_summaries(store, study)
    from ._findings import cv_findings

    return dict(study=study, answer=answer(spec, arms), bayes_accuracy=bayes(spec),
                test_note=TEST_NOTE, std_definition=STD_WORDS, data_property=arms[0].data_property if arms else None,
                arms=[a.as_dict() for a in arms],
                findings=[f.as_dict() for f in cv_findings(arms)], trials=trial_listing(store, study))


TEST_NOTE = ("The test rows were held out before any fold was made and touched once per arm, at the end: one fit on "
             "every development row with the hyperparameter chosen most often on the outer folds; nothing was "
             "chosen on them.")


STD_WORDS = ("one std definition everywhere (two-way random effects, scalelab.decompose): std seeds = across seeds "
             "at a fixed split, √(σ²seed + σ²res); std splits = what the split adds, √σ²split; std all = over all "
             "runs, √ of their sum; the test column's std is across seeds on the one test split")


def test_cell(a: ArmSummary) -> str:
    if not a.test_acc:
        return "—"
    return f"{np.mean(a.test_acc):.3f}" + (f" ± {a.test_std:.3f}" if math.isfinite(a.test_std) else "")


def render_table(arms: list[ArmSummary], title: str = ""):
    """A rich table: per arm mean, std across seeds and splits, range, 95% CI, chosen values, test."""
    from rich.table import Table

    from ._runner import SELECT_LABEL

    table = Table(title=title or None, caption="validation accuracy on the outer folds; " + STD_WORDS)
    for c in ("arm", "runs", "mean", "std seeds", "std splits", "std all", "range", "95% CI", "seed share",
              "chosen per fold", "test ± std seeds"):
        table.add_column(c, justify="left" if c in ("arm", "chosen per fold") else "right", overflow="fold")
    for a in arms:
        d = a.decomposition
        ch = ""
        if a.select:
            ch = f"{SELECT_LABEL[a.select]}: " + " ".join(f"{v:g}" for _, v in sorted(a.chosen.items()))
        test = test_cell(a)
        table.add_row(a.name, f"{d['n_seeds']}×{d['n_splits']}", f"{d['mean']:.3f}", f"{d['std_seeds']:.3f}",
                      f"{d['std_splits']:.3f}", f"{d['std_total']:.3f}", f"{d['min']:.3f}–{d['max']:.3f}",
                      f"[{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]", pct(d["seed_share"]) if
                      math.isfinite(d["seed_share"]) else "—", ch, test)
    return table


def print_cv(store, study: str) -> None:
    """``scalelab show`` / the end of ``study run`` for a cross-validated study."""
    from .._report import print_rich
    from ._findings import cv_findings

    spec, arms = arm_summaries(store, study)
    print(f"Answer: {answer(spec, arms)}\n")
    print_rich(render_table(arms, f"{study}"))
    print(f"\n{TEST_NOTE}\n")
    findings = cv_findings(arms)
    if findings:
        print(f"Findings (scalelab explain {study}):")
        for f in findings:
            print(f"- [{f.id}] {f.text}")


def cv_answers(store, study: str):
    """(answers, findings) as :func:`scalelab._explain.answers` gives them: one answer for the
    whole study (the first arm is its baseline), and the study's findings."""
    from .._explain._answer import Answer
    from ._findings import cv_findings

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
