"""The checks a watched run made before its first step (the model, loss, optimizer and
data the user's script gave it; see :mod:`scalelab.attach._checks`), as findings: they
are stored with the run (``env["checks"]``) and shown first, since they were known
before any update. A level's seeds report a check once (with how many seeds showed it)."""

from __future__ import annotations

from ._findings import CAUSE, NOTE, Finding
from ._one_run_refs import one_level
from ._registry import register
from ._view import LevelView

IDS = {"output-loss-mismatch": CAUSE, "label-encoding-mismatch": CAUSE, "fractional-labels": CAUSE,
       "labels-out-of-range": CAUSE, "one-class-labels": CAUSE, "class-imbalance": NOTE, "input-scale": CAUSE,
       "input-offset": CAUSE, "constant-features": NOTE, "non-finite-data": CAUSE, "target-scale": CAUSE,
       "no-nonlinearity": CAUSE, "learning-rate": CAUSE, "sorted-labels": CAUSE, "frozen-model": CAUSE,
       "optimizer-params": CAUSE, "missing-zero-grad": CAUSE, "target-shape-broadcast": CAUSE, "symmetric-init": CAUSE,
       "dead-units-at-start": CAUSE, "unregistered-params": CAUSE, "saturated-at-start": CAUSE}


@register(IDS, rank=2, on_diverged=True)
def rule_checks_before_first_step(t: LevelView, ref: LevelView | None = None, found=()) -> list[Finding]:
    """Each check that fired on a seed of the level, once, with its own role and its fix."""
    if not one_level(t):
        return []
    seen: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for env in t.envs:
        for c in env.get("checks") or []:
            if c.get("id") not in IDS:
                continue
            counts[c["id"]] = counts.get(c["id"], 0) + 1
            if c["id"] not in seen:
                seen[c["id"]] = Finding(c["id"], t.level, dict(c.get("evidence") or {}), "", role=c.get("role", ""),
                                        at=-1.0)
                seen[c["id"]].text = c.get("text", "")
    out = []
    for fid, f in seen.items():
        n = len(t.envs)
        where = f"at {t.label}, before training" + (f" ({counts[fid]} of {n} seeds)" if n > 1 else "")
        f.evidence["seeds"] = counts[fid]
        f.text = f"{where}: {f.text}"
        out.append(f)
    return out
