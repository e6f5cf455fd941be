"""Running the registered rules over a study's levels, and writing the findings as text."""

from __future__ import annotations

import math

import numpy as np

from .._store._levels import trial_record
from .._store import Store
from ._findings import Finding
from ._registry import run_rules
from ._view import LevelView, study_views, view_of


def shared_metric(views: list[LevelView]) -> tuple[str, callable, bool]:
    """The metric every level is ranked by: (name, value of a view, higher is better).

    Levels that train on different losses (MSE, ELBO, mixture NLL, …) never compare by
    their own losses, and "best" is best on validation where there is a validation set:
    trajectories by minFDE_k over K samples (validation, else test; ties by ADE);
    regression by the median R² in the targets' own units (validation, else test: training
    losses in different target units do not compare); classification by validation
    accuracy; without a validation set, a study whose levels share one loss keeps the lowest
    final training loss (its levels minimize the same objective)."""
    ok = [v for v in views if v.final]

    def has(key: str) -> bool:
        return bool(ok) and all(key in v.final and np.isfinite(v.final[key]).any() for v in ok)

    def mean(key: str):
        return lambda v: float(np.nanmean(v.final[key])) if key in v.final else math.nan

    def median(key: str):
        return lambda v: float(np.nanmedian(v.final[key])) if key in v.final else math.nan

    fde = sorted({k for v in ok for k in v.final if k.startswith("test_min_fde_")})
    if fde:
        k = fde[0][len("test_min_fde_"):]
        part = "val" if has(f"val_min_fde_{k}") else "test"
        word = "validation" if part == "val" else "test"
        main, ade = mean(f"{part}_min_fde_{k}"), mean(f"{part}_ade")
        return f"{word} minFDE_{k}", lambda v: main(v) + 1e-9 * min(ade(v), 1e6), False   # ADE breaks ties
    if has("test_r2") or has("val_r2"):
        return ("validation R²", median("val_r2"), True) if has("val_r2") else ("test R²", median("test_r2"), True)
    if has("val_acc"):
        return "validation accuracy", mean("val_acc"), True
    if len({v.spec.loss.name for v in views if v.spec is not None}) > 1 and has("test_acc"):
        return "test accuracy", mean("test_acc"), True
    return "final train loss", lambda v: v.final_train_loss, False


def reference(views: list[LevelView]) -> LevelView:
    """The level that did best on :func:`shared_metric` (a level whose seeds all diverged is
    never the reference while another finished)."""
    ok = [v for v in views if math.isfinite(v.final_train_loss)] or views
    _, value, higher = shared_metric(ok)

    def score(v):
        x = value(v)
        return (-x if higher else x) if math.isfinite(x) else math.inf
    return min(ok, key=score)


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
