"""Study specs: a TOML file or the same thing as a Python object.

A spec fails loudly: an unknown key, a wrong type or an out-of-range value is a
:class:`SpecError` with one line naming the key path and what is allowed. ``_sections``
holds the pydantic models, ``_parse`` the validation and its errors, ``_resolve`` the
profiles that fill unset fields, ``_trials`` the expansion into trials, ``_count`` their number
(no pydantic: ``scalelab ls`` counts stored specs with it). The names load on first use.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    '_set_path': '_parse',
    'load_spec': '_parse',
    'parse_spec': '_parse',
    'PROFILES': '_resolve',
    'effective_hyperparameters': '_resolve',
    'resolve': '_resolve',
    'Trial': '_trials',
    'count_trials': '_count',
    'expand': '_trials',
    'iter_trials': '_trials',
    'trial_at': '_trials',
    'DATASETS': '_sections',
    'INITS': '_sections',
    'DataSpec': '_sections',
    'EffectiveSpec': '_sections',
    'InputSpec': '_sections',
    'LossSpec': '_sections',
    'ModelSpec': '_sections',
    'OptimSpec': '_sections',
    'ProbesSpec': '_sections',
    'SpecError': '_errors',
    'StudySpec': '_sections',
    'TargetSpec': '_sections',
    'TrainSpec': '_sections',
    'TrialSpec': '_sections',
}
__all__ = sorted(n for n in _EXPORTS if not n.startswith("_"))

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
