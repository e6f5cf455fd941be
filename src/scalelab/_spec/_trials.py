"""A study's trials: arms × the factor grid × seeds, each with its resolved, frozen spec."""

from __future__ import annotations

import copy
import itertools
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, ValidationError

from .._format import level_label
from ._parse import _one_line, _set_path
from ._resolve import effective_hyperparameters, resolve
from ._sections import STUDY_ONLY, SpecError, StudySpec, TrialSpec
from ._count import count_trials  # noqa: F401  (the package's name for it)
from ._key import NOT_COMPUTED, computed_json as _computed_json, key_of as _key, trial_key  # noqa: F401


class Trial(BaseModel):
    """One model to train: a point of the grid and a seed, with its fully resolved spec."""

    model_config = ConfigDict(frozen=True)
    study: str
    level: dict[str, Any]      # grid key -> value as written in the spec
    seed: int
    spec: TrialSpec            # resolved spec of this trial (grid applied, profile filled)

    @property
    def key(self) -> str:
        return _key(self.spec.computed_json, self.seed)

    @property
    def level_name(self) -> str:
        return level_label(self.level)


def expand(spec: StudySpec) -> list[Trial]:
    """The trials of a study: arms × the factor grid (all combinations) × seeds, in a stable order."""
    return list(iter_trials(spec))


def iter_trials(spec: StudySpec) -> Iterator[Trial]:
    """:func:`expand` one trial at a time: a big grid streams instead of filling memory first."""
    base = spec.model_dump(exclude=STUDY_ONLY)
    keys = list(spec.grid)
    for arm, overrides in list(spec.arms.items()) or [(None, {})]:
        for combo in itertools.product(*(spec.grid[k] for k in keys)) if keys else [()]:
            level, rspec = _resolve_point(spec, base, arm, overrides, keys, combo)
            for seed in spec.seed_list():
                yield Trial(study=spec.name, level=level, seed=seed, spec=rspec)


def trial_at(spec: StudySpec, index: int) -> Trial:
    """The trial :func:`iter_trials` yields at position ``index``, built alone (arms, then the
    grid with its last key fastest, then seeds)."""
    seeds, keys = spec.seed_list(), list(spec.grid)
    rest, seed_i = divmod(index, len(seeds))
    combo = []
    for k in reversed(keys):
        rest, j = divmod(rest, len(spec.grid[k]))
        combo.append(spec.grid[k][j])
    arms = list(spec.arms.items()) or [(None, {})]
    if rest >= len(arms):
        raise IndexError(f"trial {index} is past the {count_trials(spec)} trials of study {spec.name!r}")
    level, rspec = _resolve_point(spec, spec.model_dump(exclude=STUDY_ONLY), *arms[rest], keys, combo[::-1])
    return Trial(study=spec.name, level=level, seed=seeds[seed_i], spec=rspec)


def _resolve_point(spec: StudySpec, base: dict, arm, overrides: dict, keys: list, combo) -> tuple[dict, TrialSpec]:
    """The level and resolved spec of one arm × grid point."""
    d = copy.deepcopy(base)
    for k, v in [*overrides.items(), *zip(keys, combo)]:
        _set_path(d, k, v)
    try:
        resolved = resolve(StudySpec.model_validate(d))
    except ValidationError as e:
        raise SpecError(_one_line(e, "")) from None
    rdump = resolved.model_dump(exclude=STUDY_ONLY)
    rspec = TrialSpec.model_validate({**rdump, "effective": effective_hyperparameters(resolved)})
    level = ({"arm": arm} if arm is not None else {}) | dict(zip(keys, combo))
    return level, rspec
