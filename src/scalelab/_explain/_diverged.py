"""Seeds whose loss stopped being finite."""

from __future__ import annotations

from ._findings import CAUSE, Finding
from ._registry import register
from ._view import LevelView


@register({"diverged": CAUSE}, rank=10, on_diverged=True)
def rule_diverged(t: LevelView, ref: LevelView | None = None, found=()) -> list[Finding]:
    """Seeds whose loss became NaN or inf (their probes are left out of every other rule)."""
    if not t.diverged_steps:
        return []
    steps = sorted(t.diverged_steps)
    ev = dict(fired="seeds_diverged", seeds_diverged=len(steps), n_seeds=t.n_seeds, first_nonfinite_steps=steps)
    text = (f"at {t.label}, {len(steps)} of {t.n_seeds} seeds diverged (loss not finite from step "
            f"{', '.join(map(str, steps))}).")
    return [Finding("diverged", t.level, ev, text, at=float(steps[0]))]
