"""A finding: one mechanism seen at one level, with the numbers behind its text."""

from __future__ import annotations

from dataclasses import dataclass

# What a finding is to the level it concerns. Only a ``cause`` is a pathology: when one
# fires, the level is not reported as healthy ("no-pathology"). A ``consequence`` is
# what follows from a cause (shown, but it proves nothing on its own); a ``note`` is a
# measurement worth reading that is not a problem (curvature within limits, dead units
# that are *not* elevated, "no pathology found" itself).
CAUSE, CONSEQUENCE, NOTE = "cause", "consequence", "note"
ROLES = (CAUSE, CONSEQUENCE, NOTE)


@dataclass
class Finding:
    id: str                 # stable mechanism name, e.g. "clipped-zero-gradient"
    level: dict             # the sweep level it concerns
    # the numbers behind the text; evidence["fired"] names the entry whose value fired the rule
    # (a threshold crossed: a ratio, a share, a loss), which the text quotes
    evidence: dict
    text: str
    role: str = ""          # one of ROLES; empty: the registry's role for this id (filled in when run)
    # when the mechanism first showed, in training time: probed step s of a forward probe (the
    # model before update s + 1) is s, update s (an after-step probe) is s + 0.5; None: not one step
    at: float | None = None
    # the remedy measured across seeds (scalelab verify; _verify_read.with_verification), None: not verified
    verified: dict | None = None

    def as_dict(self) -> dict:
        """The finding as ``explain --format json`` writes it: id, level, evidence, text
        (the role is the registry's to say, see :func:`scalelab._explain.rules`, and the
        JSON stays what scripts already read)."""
        out = dict(id=self.id, level=self.level, evidence=self.evidence, text=self.text)
        if self.verified is not None:
            out["verified"] = self.verified
        return out
