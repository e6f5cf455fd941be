""""Did you mean …?" for a mistyped name: a study, a spec key, a command or an option."""

from __future__ import annotations


def did_you_mean(word: str, choices, n: int = 1) -> str:
    """" did you mean 'x'?" for the closest of ``choices`` to ``word``, or "" when none is close.
    Never the word itself, and only a near spelling (similarity 0.75: one or two letters off
    in a short word); at difflib's default 0.6 it proposed unrelated keys ('steps' for 'seeds')."""
    import difflib   # only on an error: the CLI's start-up stays lean

    others = [c for c in choices if c.lower() != word.lower()]
    close = difflib.get_close_matches(word, others, n=n, cutoff=0.75)
    return f" did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
