"""A trial's key: what it computes, hashed, stable across versions of scalelab.

A trial is what it computes: the study's name, question and seed list, and ``effective``
(derived from the rest), do not change its numbers, so a study that adds seeds or levels, or
another study, reuses a stored trial with the same key.

Stable across versions: a spec field added after the first keyed release (``KEYED_FIELDS``
lists the fields that release had) changes nothing while it holds its default, so it is
left out of the key then. A store written before the field existed keeps its trials; a trial
that sets the new field to anything else gets a new key. New fields need no registration:
the rule applies to every field not in the list.
"""

from __future__ import annotations

import hashlib
import json
import typing
from functools import lru_cache

NOT_COMPUTED = ("name", "question", "seeds", "effective")

# the sections and fields that keys were computed over when keys were introduced
KEYED_FIELDS: dict[str, frozenset[str] | None] = {
    "profile": None,
    "data": frozenset({"dataset", "dir", "n_samples", "noise", "path", "split_seed", "target", "task",
                       "test_fraction", "test_subset", "train_subset", "validation", "verify"}),
    "input": frozenset({"equivalent_to", "feature_range", "features", "per_feature", "scale", "transform"}),
    "target": frozenset({"feature_range", "per_feature", "scale", "transform"}),
    "model": frozenset({"activation", "batchnorm", "bias_init", "bn_eps", "bn_momentum", "conv", "hidden", "init",
                        "init_scale", "kernel", "kind", "layers"}),
    "loss": frozenset({"clip", "from_logits", "name"}),
    "optim": frozenset({"beta1", "beta2", "eps", "eps_mode", "eps_mult", "l2", "l2_mult", "lr", "lr_mult",
                        "momentum", "name", "nesterov", "wd_mult", "weight_decay"}),
    "train": frozenset({"batch_size", "compile", "device", "dtype", "epochs", "flush_denormals", "group_size",
                        "shuffle"}),
    "probes": frozenset({"batch", "every", "hessian_batch", "hessian_iters", "only", "points_per_decade", "preset",
                         "schedule"}),
    # an optional section (None: left out of the key) keyed since it was added, with these fields
    "trajectory": frozenset({"n_obs", "n_future", "probs", "junction_types", "speed", "noise", "coord_range", "n_test",
                             "units", "grid_size", "components", "latent", "k", "density_samples"}),
}
OPTIONAL_SECTIONS = frozenset({"trajectory", "verify"})   # sections that, left unset, leave keys and hashes as they were


def _as_json(value) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return json.dumps(value, sort_keys=True, default=str)


# TrialSpec, set by _sections where it is defined (the package's __init__ imports it before
# anyone can reach this module), so that this lower module need not import it back
_TRIAL_SPEC: list = []


def register_trial_spec(cls) -> None:
    _TRIAL_SPEC[:] = [cls]
    _new_field_defaults.cache_clear()


@lru_cache(maxsize=1)
def _new_field_defaults() -> dict[str, dict[str, str] | str]:
    """Defaults (as JSON) of the fields added since ``KEYED_FIELDS``: section -> field -> JSON,
    or section -> JSON for a whole new section."""
    from pydantic import BaseModel

    out: dict = {}
    for name, field in _TRIAL_SPEC[0].model_fields.items():
        if name in NOT_COMPUTED:
            continue
        default = field.get_default(call_default_factory=True)
        if name in OPTIONAL_SECTIONS:   # its fields' defaults, from the section's class
            cls = next(a for a in typing.get_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel))
            out[name] = {f: _as_json(sf.get_default(call_default_factory=True))
                         for f, sf in cls.model_fields.items() if f not in KEYED_FIELDS[name]}
            continue
        if name not in KEYED_FIELDS:
            out[name] = _as_json(default)
            continue
        section = type(default) if isinstance(default, BaseModel) else None
        if KEYED_FIELDS[name] is None or section is None:
            continue
        out[name] = {f: _as_json(sf.get_default(call_default_factory=True))
                     for f, sf in section.model_fields.items() if f not in KEYED_FIELDS[name]}
    return out


def without_new_defaults(spec: dict) -> dict:
    """A dumped spec (a trial's or a study's) without the fields added since ``KEYED_FIELDS``
    that hold their defaults: what a hash of it must see to stay what it was before them."""
    new = _new_field_defaults()
    out = {}
    for k, v in spec.items():
        if k in OPTIONAL_SECTIONS and v is None:
            continue                        # an optional section left unset
        if k not in KEYED_FIELDS:
            if k in new and _as_json(v) == new[k]:
                continue                    # a new section at its default
        elif isinstance(v, dict) and isinstance(new.get(k), dict):
            v = {f: x for f, x in v.items() if not (f in new[k] and _as_json(x) == new[k][f])}
        out[k] = v
    return out


def computed_json(spec: dict) -> str:
    """The part of a resolved spec (as dumped, or as stored in JSON) that the key hashes."""
    return json.dumps(without_new_defaults({k: v for k, v in spec.items() if k not in NOT_COMPUTED}),
                      sort_keys=True, default=str)


def key_of(spec_json: str, seed: int) -> str:
    # the text json.dumps({"spec": ..., "seed": seed}, sort_keys=True) writes, built from the
    # spec's JSON once per grid point (the seeds of a point share their TrialSpec)
    return hashlib.sha256(f'{{"seed": {json.dumps(seed)}, "spec": {spec_json}}}'.encode()).hexdigest()[:20]


def trial_key(spec: dict, seed: int) -> str:
    """The key of a trial from its resolved spec (as dumped, or as stored in JSON) and seed."""
    return key_of(computed_json(spec), seed)
