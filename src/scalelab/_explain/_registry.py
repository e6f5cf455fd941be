"""The rule registry: every explain rule registers itself here with the finding ids it
can produce and their roles, the rank it runs (and is shown) at, and the probe
quantities it reads. :func:`run_rules` runs them in rank order for one level.

A rule is a function ``rule(target, reference, found=()) -> list[Finding]``: *found*
holds what the rules ranked before it found for the same level, so a rule can say
something only in the light of them (dead units "are not the cause" of another
pathology; "no pathology found" when no cause fired).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._compare import in_time_order, within_reference_range
from ._findings import ROLES, Finding
from ._view import LevelView

RuleFn = Callable[..., list[Finding]]


@dataclass(frozen=True)
class Rule:
    fn: RuleFn
    ids: dict[str, str]               # finding id -> its role (a finding may say its own, see dead-relu)
    rank: int                         # run and shown in increasing rank
    needs: tuple[tuple[type, str], ...] = ()   # (probe class, quantity pattern) pairs it reads
    on_diverged: bool = False         # runs when every seed diverged (nothing finished to look at)

    @property
    def name(self) -> str:
        return self.fn.__name__


_RULES: list[Rule] = []


def register(ids: dict[str, str], rank: int, needs: tuple[tuple[type, str], ...] = (),
             on_diverged: bool = False) -> Callable[[RuleFn], RuleFn]:
    """Decorator: add a rule to the registry (the function itself is returned unchanged,
    so it can still be called on its own)."""
    def add(fn: RuleFn) -> RuleFn:
        bad = {i: r for i, r in ids.items() if r not in ROLES}
        if bad:
            raise ValueError(f"rule {fn.__name__}: roles {bad} are not among {ROLES}")
        if any(r.rank == rank for r in _RULES):
            raise ValueError(f"rule {fn.__name__}: rank {rank} is taken; ranks order the findings")
        _RULES.append(Rule(fn, dict(ids), rank, tuple(needs), on_diverged))
        _RULES.sort(key=lambda r: r.rank)
        return fn
    return add


def rules() -> list[Rule]:
    """Every registered rule, in rank order."""
    return list(_RULES)


def run_rules(t: LevelView, ref: LevelView) -> list[Finding]:
    """The findings of every rule for one level, in rank order, each with its role.

    No pathology means no pathology: for a level (not the reference) whose final metrics
    lie inside the reference's seed range, a ``cause`` is reported as a ``note`` (what the
    rule measured is real, but the level trains as well as the reference)."""
    finished = len(t.diverged_steps) < t.n_seeds   # something finished to look at
    inside = t is not ref and finished and within_reference_range(t, ref)
    found: list[Finding] = []
    for rule in _RULES:
        if not (finished or rule.on_diverged):
            continue
        for f in rule.fn(t, ref, found):
            if f.id not in rule.ids:
                raise ValueError(f"rule {rule.name} produced {f.id!r}, which it did not register")
            f.role = f.role or rule.ids[f.id]
            if "fired" in f.evidence and f.evidence["fired"] not in f.evidence:
                raise ValueError(f"rule {rule.name}: {f.id} says it fired on {f.evidence['fired']!r}, "
                                 f"which its evidence lacks")
            if inside and f.role == "cause":
                f.role = "note"
                f.evidence["within_reference_seed_range"] = True
                f.text = f.text.rstrip(".") + (f"; not a cause here: the final metrics are inside {ref.label}'s seed "
                                               f"range.")
            found.append(f)
    return in_time_order(found)
