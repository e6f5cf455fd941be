"""The arms of a cross-validated study and their trial specs: each arm's spec resolved once,
each position (repeat, fold, inner fold, candidate value) of an arm resolved once."""

from __future__ import annotations

import copy

from .._spec import SpecError, StudySpec, TrialSpec
from .._spec._parse import _set_path
from .._spec._sections import STUDY_ONLY
from .._spec._resolve import effective_hyperparameters, resolve


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


def resolved(d: dict) -> TrialSpec:
    d = {k: v for k, v in d.items() if k not in (*STUDY_ONLY, "effective")}
    st = resolve(StudySpec.model_validate(d))
    return TrialSpec.model_validate({**st.model_dump(exclude=STUDY_ONLY),
                                     "effective": effective_hyperparameters(st)})


def arm_specs(spec: StudySpec) -> dict[str, TrialSpec]:
    """Each arm's resolved spec (one arm named "base" when the study has none)."""
    base = spec.model_dump(exclude=STUDY_ONLY)
    out = {}
    for name, overrides in (list(spec.arms.items()) or [("base", {})]):
        d = copy.deepcopy(base)
        for k, v in overrides.items():
            _set_path(d, k, v)
        out[name] = resolved(d)
    return out


class Specs:
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
            self._cache[key] = resolved(d)
        return self._cache[key]
