"""The verification study of a stored study: for each cause it found, the cause's level rerun
as found (arm "before") next to the same level with the cause's remedy applied (arm "after"),
on the study's seeds. A grid study with arms, marked by its ``verify`` section, so it trains
through the same stages, work units, executors (Ray too) and checkpoints as any study
(studies/_verify.py), stacked on the engine, and is stored beside the study it verifies."""

from __future__ import annotations

from ._format import level_label, value_label
from ._remedies import NO_REMEDY, for_spec
from ._spec import StudySpec, load_spec
from ._store import Store

SUFFIX = ".verify"


def verify_name(study: str) -> str:
    return study + SUFFIX


def _overrides(source: StudySpec, level: dict) -> dict:
    """The dotted-key overrides that make ``level`` of ``source`` (its arm's and its grid keys)."""
    out = {}
    for k, v in level.items():
        if k == "arm":
            out.update(source.arms.get(v, {}))
        else:
            out[k] = v
    return out


def causes_of(store: Store, study: str) -> list:
    """The findings of role cause of a stored study, in the order explain shows them."""
    from ._explain import explain

    return [f for f in explain(store, study) if f.role == "cause"]


def verification_spec(store: Store, study: str, seeds=None) -> tuple[StudySpec | None, list[tuple]]:
    """The verification study of ``study`` (None when no cause has a remedy to run) and the
    causes left out with the reason: [(finding, why)]."""
    from ._explain import study_views

    info = store.require_study(study)
    if (info["spec"] or {}).get("watched"):
        raise ValueError(f"{study!r} is a watched run of your own training code: scalelab cannot rerun it from the "
                         f"store; verify it where it runs: Diagnose(..., verify=5) or scalelab.watch(..., verify=5)")
    source = load_spec(info["spec"])
    views = {level_label(v.level): v for v in study_views(store, study)}
    arms, causes, skipped = {}, [], []
    for f in causes_of(store, study):
        view = views.get(level_label(f.level))
        remedy = for_spec(f.id, view.spec) if view is not None else None
        if remedy is None:
            skipped.append((f, NO_REMEDY.get(f.id, "no remedy to run at this level")))
            continue
        over = _overrides(source, f.level)
        before = f"{level_label(f.level)} as found"
        change = ", ".join(f"{k}={value_label(v)}" for k, v in remedy.spec.items())
        after = f"{level_label(f.level)} with {change}"
        arms[before] = over
        arms[after] = {**over, **remedy.spec}
        causes.append(dict(finding=f.id, level=dict(f.level), remedy=remedy.words, change=dict(remedy.spec),
                           before=before, after=after))
    if not causes:
        return None, skipped
    d = source.model_dump(exclude={"grid", "arms", "descriptions", "verify"})
    d.update(name=verify_name(study), arms=arms, verify=dict(of=study, causes=causes),
             question=f"Does each cause's remedy in {study} help, measured across seeds?")
    if seeds is not None:
        d["seeds"] = seeds
    return load_spec(d), skipped
