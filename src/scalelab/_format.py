"""How values, levels and numbers are written, once, so that a level reads the same in the
CLI table, the CSV, the HTML report and every finding's text."""

from __future__ import annotations


def value_label(value) -> str:
    """How one grid value is shown: fractions stay as written ("1/255"), floats as %g."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def value_number(value) -> float | None:
    """A grid value as a number when it is one ("1/255" -> 0.00392..., 3 -> 3.0), else None."""
    from fractions import Fraction

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(Fraction(value.replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        return None


def level_label(level: dict) -> str:
    """How a whole sweep level is shown: ``"input.scale=1/255, seed=0"``, or ``"(base)"``
    for a study without factors."""
    return ", ".join(f"{k}={value_label(v)}" for k, v in level.items()) or "(base)"


def level_description(level: dict, descriptions: dict) -> str:
    """The spec's one-line descriptions of a level's values, joined ("" when it has none):
    ``descriptions`` maps "factor=value" (``arm=NAME`` for an arm) to a line."""
    norm = {k.replace(" ", ""): v for k, v in (descriptions or {}).items()}
    return "; ".join(d for k, v in level.items() if (d := norm.get(f"{k}={value_label(v)}".replace(" ", ""))))


def fmt(x, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; a missing one (None) as a dash."""
    return "—" if x is None else f"{x:.{digits}g}"


def pct(x: float) -> str:
    """A share as a percentage: one decimal below 10%, none above, and "<0.1%" for tiny
    non-zero shares (so a share that is not exactly zero never reads as 0%)."""
    if x == 0:
        return "0%"
    if x < 0.001:
        return "<0.1%"
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"
