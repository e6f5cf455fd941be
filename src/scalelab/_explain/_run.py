"""Running the registered rules over a study's levels, and writing the findings as text."""

from __future__ import annotations

import math

import numpy as np

from .._levels import trial_record
from .._store import Store
from ._findings import Finding
from ._registry import run_rules
from ._view import LevelView, study_views, view_of


def reference(views: list[LevelView]) -> LevelView:
    """The level that did best: lowest median branch-mass error for trajectory models, highest
    median test R² for regression (training losses in different target units do not
    compare), else lowest final training loss."""
    ok = [v for v in views if math.isfinite(v.final_train_loss)] or views
    if ok and all("test_branch_abs_error" in v.final for v in ok):   # trajectories: branch recovery
        return min(ok, key=lambda v: float(np.nanmedian(v.final["test_branch_abs_error"])))
    if all("test_r2" in v.final for v in ok):
        return max(ok, key=lambda v: float(np.nanmedian(v.final["test_r2"])))
    return min(ok, key=lambda v: v.final_train_loss if math.isfinite(v.final_train_loss) else math.inf)


def explain_views(views: list[LevelView], targets: list[LevelView] | None = None) -> list[Finding]:
    """Findings for ``targets`` (default: every level), contrasted with the best level."""
    ref = reference(views)
    for v in [*views, *(targets or [])]:
        v.peers = views
    return [f for t in targets or views for f in run_rules(t, ref)]


def explain(store: Store, study: str, trial_id: int | None = None) -> list[Finding]:
    """Findings of a stored study, or of one of its trials (contrasted with the study's best level).

    >>> for f in scalelab.explain(scalelab.Store("scalelab.db"), "input-scaling"):
    ...     print(f.id, f.role, f.text)
    """
    views, targets = study_targets(store, study, trial_id)
    return explain_views(views, targets)


def study_targets(store: Store, study: str, trial_id: int | None = None) -> tuple[list[LevelView], list | None]:
    """The views of every level of a stored study, and the one-trial view to explain when
    ``trial_id`` is given (None: every level)."""
    views = study_views(store, study)
    if trial_id is None:
        return views, None
    info = store.require_study(study)
    t = next((t for t in store.trials(info["id"]) if t["id"] == trial_id), None)
    if t is None:
        raise KeyError(f"trial {trial_id} is not in study {study!r}; `scalelab trials {study}` lists its trial ids")
    return views, [view_of([trial_record(store, t)], {**t["level"], "seed": t["seed"]})]


def render_text(findings: list[Finding]) -> str:
    """The findings as a bulleted list, or what to do when there are none."""
    if not findings:
        return ("No findings. Most rules read probe records: run with --probes standard (or set [probes] preset) "
                "to record them.\n")
    return "".join(f"- [{f.id}] {f.text}\n" for f in findings)
