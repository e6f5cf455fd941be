"""Study specs: a TOML file or the same thing as a Python object.

A spec fails loudly: an unknown key, a wrong type or an out-of-range value is a
:class:`SpecError` with one line naming the key path and what is allowed. ``_sections``
holds the pydantic models, ``_parse`` the validation and its errors, ``_resolve`` the
profiles that fill unset fields, ``_trials`` the expansion into trials.
"""

from ._parse import _set_path, load_spec, parse_spec  # noqa: F401  (_set_path: for --set overrides)
from ._resolve import PROFILES, effective_hyperparameters, resolve
from ._sections import (DATASETS, INITS, DataSpec, EffectiveSpec, InputSpec, LossSpec, ModelSpec, OptimSpec,
                        ProbesSpec, SpecError, StudySpec, TargetSpec, TrainSpec, TrialSpec)
from ._trials import Trial, count_trials, expand, iter_trials, trial_at

__all__ = ["DATASETS", "INITS", "PROFILES", "DataSpec", "EffectiveSpec", "InputSpec", "LossSpec", "ModelSpec",
           "OptimSpec", "ProbesSpec", "SpecError", "StudySpec", "TargetSpec", "TrainSpec", "Trial", "TrialSpec",
           "count_trials", "effective_hyperparameters", "expand", "iter_trials", "trial_at", "load_spec", "parse_spec", "resolve"]
