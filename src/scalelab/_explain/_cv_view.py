"""A stored cross-validated study read back, as its findings and reports read it: per arm
the seeds × splits table of validation accuracy, its variance decomposition, the
hyperparameter chosen on each outer fold and the one test score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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
