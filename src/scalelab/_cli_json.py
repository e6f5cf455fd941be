"""The command line's JSON: strict (no bare NaN), findings with their role and rank."""

from __future__ import annotations

import json


def _finite(x):
    """``x`` with every NaN or infinity as None: JSON has no such numbers (a strict parser
    refuses Python's bare NaN)."""
    if isinstance(x, float):
        return x if x == x and x not in (float("inf"), float("-inf")) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:   # a numpy scalar
        return _finite(x.item())
    return x


def print_json(obj) -> None:
    """Every ``--format json`` output: strict JSON (null for a missing or non-finite number)."""
    print(json.dumps(_finite(obj), indent=2, default=str, allow_nan=False))


def findings_json(findings) -> list[dict]:
    """Findings as JSON records, each with its role (cause, consequence, note) and its rank:
    its place, from 1, in the order the text shows them."""
    return [{**f.as_dict(), "role": getattr(f, "role", None) or None, "rank": i} for i, f in enumerate(findings, 1)]
