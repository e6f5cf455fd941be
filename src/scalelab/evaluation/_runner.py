"""A cross-validated study end to end: for every arm, every repeat and outer fold, choose
the arm's hyperparameter on inner folds (nested selection), fit every seed on the outer
training rows and score the outer validation fold; then, once per arm and only then, fit on
every development row with the hyperparameter chosen most often and score the test rows.

Trials are stored like any study's (one per arm × repeat × fold × seed, inner ones too),
their level naming where they sit: ``{"arm", "phase", "repeat", "fold", ...}`` with
phase ``outer``, ``inner`` or ``test``. A rerun skips what is stored."""

from __future__ import annotations

import copy
import math
import sys
import time
from collections import Counter

import numpy as np

from .._spec import SpecError, StudySpec, TrialSpec
from .._spec._cv import SELECT_LABEL
from .._spec._parse import _set_path
from .._spec._resolve import effective_hyperparameters, resolve
from .._spec._trials import Trial
from ._train import fit_estimator, train_network



def check_cv_spec(spec: StudySpec) -> None:
    """What a cross-validated study cannot run: one actionable line."""
    if spec.grid:
        raise SpecError(f"{spec.name}: a cross-validated study compares [arms.*], not a grid; move "
                        f"{', '.join(spec.grid)} into arms")
    for name, arm in arm_specs(spec).items():
        cv = arm.cv
        if (cv.pca or cv.select == "cv.pca") and arm.input.transform != "none":
            raise SpecError(f"arms.{name}: PCA whitens the inputs itself; set \"input.transform\" = \"none\" in this arm")
        if arm.train.keep != "none":
            raise SpecError(f"arms.{name}: train.keep stores the models of a study without [cv]; a cross-validated "
                            f"study trains one per seed, fold and candidate value: leave train.keep = \"none\"")
        if cv.estimator == "ensemble" and cv.select:
            raise SpecError(f"arms.{name}: an ensemble averages the network's seeds; it has no cv.select of its own")
        n_seeds = len(list(spec.seed_list()))
        if cv.estimator == "ensemble" and cv.ensemble > n_seeds:
            raise SpecError(f"arms.{name}: cv.ensemble = {cv.ensemble} needs at least that many seeds (the study has "
                            f"{n_seeds}); lower cv.ensemble or add seeds")
        if arm.data.dataset not in ("pn-synthetic", "fmnist-pair", "file"):
            raise SpecError(f"arms.{name}: cross-validated studies take data.dataset = pn-synthetic, fmnist-pair "
                            f"or file (got {arm.data.dataset!r})")


def _resolved(d: dict) -> TrialSpec:
    d = {k: v for k, v in d.items() if k not in ("grid", "arms", "descriptions", "effective")}
    st = resolve(StudySpec.model_validate(d))
    return TrialSpec.model_validate({**st.model_dump(exclude={"grid", "arms", "descriptions"}),
                                     "effective": effective_hyperparameters(st)})


def arm_specs(spec: StudySpec) -> dict[str, TrialSpec]:
    """Each arm's resolved spec (one arm named "base" when the study has none)."""
    base = spec.model_dump(exclude={"grid", "arms", "descriptions"})
    out = {}
    for name, overrides in (list(spec.arms.items()) or [("base", {})]):
        d = copy.deepcopy(base)
        for k, v in overrides.items():
            _set_path(d, k, v)
        out[name] = _resolved(d)
    return out


class _Specs:
    """Trial specs of one arm at a position and a candidate value (resolved once each)."""

    def __init__(self, arm: TrialSpec):
        self.arm, self._cache = arm, {}

    def __call__(self, repeat, fold, inner=None, value=None, estimator=None) -> TrialSpec:
        key = (repeat, fold, inner, value, estimator)
        if key not in self._cache:
            d = self.arm.model_dump()
            d["cv"].update(repeat=repeat, fold=fold, inner=inner)
            if estimator:
                d["cv"]["estimator"] = estimator
            sel = self.arm.cv.select
            if sel and value is not None:
                _set_path(d, sel, int(value) if sel == "cv.pca" else value)
            self._cache[key] = _resolved(d)
        return self._cache[key]


def _fit(trials: list[Trial], data_dir, device, cache: dict) -> list[dict]:
    """Results of trials (same split), networks trained as stacked groups; cached by key so
    that an ensemble reuses its network's models."""
    from ..engine import plan_groups

    todo = [t for t in trials if t.key not in cache]
    nets = [t for t in todo if t.spec.cv.estimator == "network"]
    for t in todo:
        if t.spec.cv.estimator not in ("network", "ensemble"):
            cache[t.key] = fit_estimator(t, data_dir)
    for group in plan_groups(nets, 64, data_dir, device):
        curves = group[0].spec.cv.inner is None and group[0].spec.cv.fold != -1
        for t, r in zip(group, train_network(group, data_dir, device, curves=curves)):
            cache[t.key] = r
    return [cache[t.key] for t in trials]


def _score(results: list[dict]) -> tuple[float, float]:
    return float(np.mean([r["acc"] for r in results])), float(np.mean([r["loss"] for r in results]))


def _result(trial: Trial, r: dict, scored: str):
    """A stored TrialResult: the scored rows' metrics under val_* (folds) or test_* (the test rows)."""
    from ..engine import TrialResult

    epochs = [dict(e) for e in r["epochs"]] or [dict(epoch=1)]
    last = epochs[-1]
    for e in epochs:
        for k in ("val_loss", "val_acc", "test_loss", "test_acc"):
            e.setdefault(k, math.nan)
    last[f"{scored}_acc"], last[f"{scored}_loss"] = r["acc"], r["loss"]
    bad = [e["epoch"] for e in epochs if not math.isfinite(e.get("train_loss", 0.0)) and
           trial.spec.cv.estimator == "network"]
    return TrialResult(trial, "diverged" if bad else "done", bad[0] if bad else None, epochs, r["wall_s"])


def _ensembles(trials: list[Trial], members: list[dict], size: int, y: np.ndarray) -> list[dict]:
    """Disjoint ensembles of ``size`` consecutive seeds: averaged probabilities, scored."""
    out = []
    for e in range(len(members) // size):
        probs = np.mean([m["probs"] for m in members[e * size:(e + 1) * size]], axis=0)
        acc = float(np.mean(probs.argmax(-1) == y)) if len(y) else math.nan
        loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1)))) if len(y) else math.nan
        out.append(dict(probs=probs, acc=acc, loss=loss, epochs=[dict(epoch=1)],
                        best_epoch=None, wall_s=0.0))
    return out


def _save(store, sid, results, env):
    from .._store._write import save_results

    with store.conn:
        save_results(store.conn, sid, results, env)


def _stored_positions(store, sid) -> dict:
    """(arm, phase, repeat, fold) -> the value chosen there, for every position stored."""
    out = {}
    for t in store.trials(sid):
        lv = t["level"]
        if lv.get("phase") in ("outer", "test"):
            out[(lv["arm"], lv["phase"], lv.get("repeat"), lv.get("fold"))] = lv.get("chosen")
    return out


def run_cv_study(spec: StudySpec, store, data_dir: str | None = None, device: str | None = None,
                 progress: bool = False, sid: int | None = None, env: dict | None = None) -> int:
    """Run the arms of a cross-validated study into ``store``; returns the study id."""
    from ..data import trial_split
    from .._study import environment, spec_hash

    check_cv_spec(spec)
    if sid is None:
        sid = store.study_id(spec.name, spec_hash(spec), spec.model_dump())
    arms = arm_specs(spec)
    seeds = list(spec.seed_list())
    env = env or environment(device or next(iter(arms.values())).train.device)
    stored = _stored_positions(store, sid)
    say = (lambda m: print(f"{spec.name}: {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    t_start = time.perf_counter()
    # results by trial key, kept for the whole run: an ensemble arm reuses the models of the
    # network arm whose spec it shares (stacked training gives them almost for free)
    cache: dict = {}
    for name, arm in arms.items():
        cv, specs = arm.cv, _Specs(arm)
        est = cv.estimator
        arm_seeds = [0] if est not in ("network", "ensemble") else seeds
        choices = []
        for r in range(cv.repeats):
            for f in range(cv.folds):
                if (name, "outer", r, f) in stored:
                    choices.append(stored[(name, "outer", r, f)])
                    continue
                t0 = time.perf_counter()
                chosen, inner_results = None, []
                if cv.select:
                    chosen, inner_results = _select(spec.name, name, arm, specs, r, f, seeds, data_dir, device)
                lv = dict(arm=name, phase="outer", repeat=r, fold=f) | ({"chosen": chosen} if cv.select else {})
                if est == "ensemble":
                    members = [Trial(study=spec.name, level=lv, seed=s, spec=specs(r, f, estimator="network"))
                               for s in arm_seeds]
                    res = _fit(members, data_dir, device, cache)
                    y = trial_split(members[0].spec, data_dir)[1].y_val
                    ens = _ensembles(members, res, cv.ensemble, y)
                    trials = [Trial(study=spec.name, level=lv, seed=e, spec=specs(r, f)) for e in range(len(ens))]
                    results = [_result(t, x, "val") for t, x in zip(trials, ens)]
                else:
                    trials = [Trial(study=spec.name, level=lv, seed=s, spec=specs(r, f, value=chosen))
                              for s in arm_seeds]
                    results = [_result(t, x, "val") for t, x in zip(trials, _fit(trials, data_dir, device, cache))]
                _save(store, sid, inner_results + results, env)
                choices.append(chosen)
                accs = [x.epochs[-1]["val_acc"] for x in results]
                say(f"{name} repeat {r} fold {f}: " + (f"chose {SELECT_LABEL[cv.select]} = {chosen:g}; " if cv.select
                                                       else "") +
                    f"val acc {np.mean(accs):.3f} (range {min(accs):.3f}–{max(accs):.3f}) "
                    f"[{time.perf_counter() - t0:.1f} s, {time.perf_counter() - t_start:.0f} s in all]")
        if (name, "test", None, None) in stored:
            continue
        final = Counter(choices).most_common(1)[0][0] if cv.select else None
        lv = dict(arm=name, phase="test") | ({"chosen": final} if cv.select else {})
        if est == "ensemble":
            members = [Trial(study=spec.name, level=lv, seed=s, spec=specs(0, -1, estimator="network"))
                       for s in arm_seeds]
            y = trial_split(members[0].spec, data_dir)[1].y_val
            ens = _ensembles(members, _fit(members, data_dir, device, cache), cv.ensemble, y)
            trials = [Trial(study=spec.name, level=lv, seed=e, spec=specs(0, -1)) for e in range(len(ens))]
            results = [_result(t, x, "test") for t, x in zip(trials, ens)]
        else:
            trials = [Trial(study=spec.name, level=lv, seed=s, spec=specs(0, -1, value=final)) for s in arm_seeds]
            results = [_result(t, x, "test") for t, x in zip(trials, _fit(trials, data_dir, device, cache))]
        _save(store, sid, results, env)
        say(f"{name}: test rows scored once" + (f" with {SELECT_LABEL[cv.select]} = {final:g}" if cv.select else "")
            + f": test acc {np.mean([x.epochs[-1]['test_acc'] for x in results]):.3f}")
    return sid


def _select(study, name, arm, specs, r, f, seeds, data_dir, device):
    """The candidate with the best mean accuracy over inner folds and the first
    ``cv.inner_seeds`` seeds (ties: lower mean log loss, then the first listed); and the
    stored results of every inner trial."""
    cv = arm.cv
    inner_seeds = seeds[: cv.inner_seeds] if cv.estimator == "network" else [0]
    scores, stored = {}, []
    for i in range(cv.inner_folds):
        trials = []
        for v in cv.values:
            lv = dict(arm=name, phase="inner", repeat=r, fold=f, inner=i, value=v)
            trials += [Trial(study=study, level=lv, seed=s, spec=specs(r, f, i, v)) for s in inner_seeds]
        res = _fit(trials, data_dir, device, {})
        for t, x in zip(trials, res):
            scores.setdefault(t.level["value"], []).append((x["acc"], x["loss"]))
            stored.append(_result(t, x, "val"))
    best = max(cv.values, key=lambda v: (np.mean([a for a, _ in scores[v]]), -np.mean([b for _, b in scores[v]])))
    return best, stored
