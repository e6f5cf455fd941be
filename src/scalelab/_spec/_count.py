"""How many trials a study has, without building any: arms × grid × seeds. On a spec object
or on its stored JSON (a dict), so that ``scalelab ls`` counts a store's studies without
pydantic or resolving a trial."""

from __future__ import annotations


def count_trials(spec) -> int:
    """How many trials :func:`expand` yields (a :class:`StudySpec`, or its ``model_dump()``)."""
    get = spec.get if isinstance(spec, dict) else lambda k, default=None: getattr(spec, k, default)
    seeds = get("seeds", 1)
    n = max(1, len(get("arms", None) or {})) * (seeds if isinstance(seeds, int) else len(seeds))
    for values in (get("grid", None) or {}).values():
        n *= len(values)
    return n
