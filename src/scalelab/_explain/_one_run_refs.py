"""Helpers of the rules that need one run (watched runs): their absolute references,
recorded by :mod:`scalelab.attach._one_run` under the probe name ``attach``."""

from __future__ import annotations

import math

from ._compare import earlier_cause
from ._findings import CAUSE, CONSEQUENCE
from ._view import LevelView

PROBE = "attach"


def one_level(t: LevelView) -> bool:
    """The rules for one run speak where there is nothing to compare with: a study of one
    level (a user's script, run once or as several seeds). A study of several levels is
    explained by comparing them, as the built-in studies are (the rules ranked with them)."""
    return len(t.peers or [t]) <= 1


def ref(t: LevelView, name: str) -> float:
    """The run's recorded value (its last recorded step, mean over seeds); nan when absent."""
    if not t.has(PROBE, name):
        return math.nan
    return t.mean_at(PROBE, name, t.last_step(PROBE, name))


def model(t: LevelView) -> dict | None:
    for env in t.envs:
        if env.get("model"):
            return env["model"]
    return None


def role_after(found, ev: dict, text: str, at: float | None = None) -> tuple[str, str]:
    """A symptom is a cause unless a cause ranked before it (and no later in training) explains it."""
    c = earlier_cause(found, at)
    if c is None:
        return CAUSE, text
    ev["consequence_of"] = c.id
    return CONSEQUENCE, text.rstrip(".") + f"; a consequence of {c.id}."
