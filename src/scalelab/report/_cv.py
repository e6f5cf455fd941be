"""A cross-validated study on the terminal and as JSON: the arms' table (seeds × splits,
the variance decomposition, the test score), the per-trial listing, the findings."""

from __future__ import annotations

import math

import numpy as np

from .._explain._cv_view import ArmSummary, arm_summaries, bayes
from .._format import pct
from ._answers import answer


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
    from .._explain._cv import cv_findings

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

    from .._spec._cv import SELECT_LABEL

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
    from ._console import print_rich
    from .._explain._cv import cv_findings

    spec, arms = arm_summaries(store, study)
    print(f"Answer: {answer(spec, arms)}\n")
    print_rich(render_table(arms, f"{study}"))
    print(f"\n{TEST_NOTE}\n")
    findings = cv_findings(arms)
    if findings:
        print(f"Findings (scalelab explain {study}):")
        for f in findings:
            print(f"- [{f.id}] {f.text}")


