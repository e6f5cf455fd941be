"""The cross-validated study (run-variance, issue 17) as stages on the engine: for every arm,
every repeat and outer fold, choose the arm's hyperparameter on inner folds (nested
selection), fit every seed on the outer training rows and score the outer validation fold;
then, once per arm and only then, fit on every development row with the value chosen most
often and score the test rows.

Stages: (0) every inner-fold trial, and the outer and test trials of arms that choose
nothing; (1) the outer trials of arms that choose, with the value their inner trials chose;
(2) their test trials, with the value chosen most often. Each stage is computed from the
store, so a rerun, or another process sharing the study, computes the same one.

Trials are stored like any study's (one per arm × repeat × fold × seed, inner ones too),
their level naming where they sit: ``{"arm", "phase", "repeat", "fold", ...}`` with phase
``outer``, ``inner`` or ``test``. The fold is a factor of the trial like its seed; one
*fit batch* (the seeds, or candidate values × seeds, of one fold) is planned into groups as
:func:`~scalelab.engine.plan_groups` plans them."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .._spec import StudySpec, TrialSpec
from .._spec._trials import Trial
from ._cv_fit import CVTrain
from ._cv_specs import Specs, arm_specs, check_cv_spec
from ._strategy import Stage

STRIDE = 10 ** 9   # a trial's position: stage × STRIDE + its index in the stage
GROUP = 64         # models per group of a fit batch (as the first runner planned them)


class _Study:
    """One run of a cross-validated study: its stages' fit batches, computed once each."""

    def __init__(self, spec: StudySpec, store, study_id: int):
        self.spec, self.store, self.sid = spec, store, study_id
        self.arms = arm_specs(spec)
        self.specs = {name: Specs(arm) for name, arm in self.arms.items()}
        self.seeds = list(spec.seed_list())
        self._batches: dict[int, list[list[Trial]]] = {}
        self._flat: dict[int, list[Trial]] = {}
        self._choices = None

    def trial(self, level: dict, seed: int, spec: TrialSpec) -> Trial:
        return Trial(study=self.spec.name, level=level, seed=seed, spec=spec)

    def arm_seeds(self, arm: TrialSpec) -> list[int]:
        return self.seeds if arm.cv.estimator in ("network", "ensemble") else [0]

    def batches(self, stage: int) -> list[list[Trial]]:
        if stage not in self._batches:
            self._batches[stage] = [b for name, arm in self.arms.items() for b in self._arm_batches(stage, name, arm)]
            self._flat[stage] = [t for b in self._batches[stage] for t in b]
        return self._batches[stage]

    def trial_at(self, position: int) -> Trial:
        stage, i = divmod(position, STRIDE)
        self.batches(stage)
        return self._flat[stage][i]

    def _arm_batches(self, stage: int, name: str, arm: TrialSpec):
        cv, specs = arm.cv, self.specs[name]
        folds = [(r, f) for r in range(cv.repeats) for f in range(cv.folds)]
        if stage == 0 and cv.select:   # inner folds: every candidate value × the first inner_seeds seeds
            inner_seeds = self.seeds[: cv.inner_seeds] if cv.estimator == "network" else [0]
            for r, f in folds:
                for i in range(cv.inner_folds):
                    yield [self.trial(dict(arm=name, phase="inner", repeat=r, fold=f, inner=i, value=v), s,
                                      specs(r, f, i, v)) for v in cv.values for s in inner_seeds]
        if (stage == 0 and not cv.select) or stage == 1 and cv.select:
            for r, f in folds:
                chosen = self.choices()[name][(r, f)] if cv.select else None
                lv = dict(arm=name, phase="outer", repeat=r, fold=f) | ({"chosen": chosen} if cv.select else {})
                yield self._fit_batch(name, arm, lv, r, f, chosen)
        if (stage == 0 and not cv.select) or stage == 2 and cv.select:
            final = Counter(self.choices()[name].values()).most_common(1)[0][0] if cv.select else None
            yield self._fit_batch(name, arm, dict(arm=name, phase="test") | ({"chosen": final} if cv.select else {}),
                                  0, -1, final)

    def _fit_batch(self, name, arm, level, r, f, value) -> list[Trial]:
        """The trials of one outer fold (or the final fit, fold -1): one per seed, or per
        ensemble of ``cv.ensemble`` consecutive seeds (which CVTrain trains together)."""
        specs = self.specs[name]
        if arm.cv.estimator == "ensemble":
            return [self.trial(level, e, specs(r, f)) for e in range(len(self.seeds) // arm.cv.ensemble)]
        return [self.trial(level, s, specs(r, f, value=value)) for s in self.arm_seeds(arm)]

    def choices(self) -> dict[str, dict]:
        """arm -> {(repeat, fold): the value its inner folds chose}, from the stored inner trials:
        the best mean accuracy over inner folds and seeds (ties: lower mean log loss, then the
        first value listed), the means taken in inner fold, value, seed order."""
        if self._choices is None:
            scores = {}
            for t in self.store.trials(self.sid):
                lv = t["level"]
                if lv.get("phase") == "inner":
                    last = self.store.epochs(t["id"])[-1]
                    scores[(lv["arm"], lv["repeat"], lv["fold"], lv["inner"], lv["value"], t["seed"])] = (
                        last["val_acc"], last["val_loss"])
            self._choices = {}
            for name, arm in self.arms.items():
                cv = arm.cv
                if not cv.select:
                    continue
                inner_seeds = self.seeds[: cv.inner_seeds] if cv.estimator == "network" else [0]
                out = self._choices[name] = {}
                for r in range(cv.repeats):
                    for f in range(cv.folds):
                        by_value = {v: [] for v in cv.values}
                        for i in range(cv.inner_folds):
                            for v in cv.values:
                                by_value[v] += [scores[(name, r, f, i, v, s)] for s in inner_seeds]
                        out[(r, f)] = max(cv.values, key=lambda v: (np.mean([a for a, _ in by_value[v]]),
                                                                    -np.mean([b for _, b in by_value[v]])))
        return self._choices

    def stage(self, stage: int, data_dir, device) -> Stage:
        from ..engine import plan_groups

        def groups(plan, keys, size):
            base = stage * STRIDE
            out, i = [], 0
            for batch in self.batches(stage):
                pos = {id(t): base + i + j for j, t in enumerate(batch)}
                i += len(batch)
                todo = [t for t in batch if t.key in keys]
                for g in plan_groups(todo, size or GROUP, data_dir, device) if todo else []:
                    out.append([(pos[id(t)], t.key) for t in g])
            return out

        return Stage(f"stage {stage}", lambda: ((stage * STRIDE + i, t) for i, t in enumerate(self._flat[stage])),
                     self.trial_at, groups, CVTrain(tuple(self.seeds)), count="trials")


class CrossValidation:
    name = "cross-validation"

    def applies(self, spec) -> bool:
        return spec.cv is not None

    def check(self, spec) -> None:
        check_cv_spec(spec)

    def stages(self, spec, store, study_id, data_dir=None, device=None):
        from ..data._folds import make_plan

        study = _Study(spec, store, study_id)
        for arm in study.arms.values():   # the folds' own reader and leak checks speak first
            make_plan(arm.data, arm.cv, data_dir)
        for s in range(3):
            if study.batches(s):
                yield study.stage(s, data_dir, device)


CROSS_VALIDATION = CrossValidation()
