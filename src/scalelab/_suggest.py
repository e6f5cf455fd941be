""""Did you mean …?" for a mistyped name: a study, a spec key, a command or an option."""

from __future__ import annotations


def did_you_mean(word: str, choices, n: int = 1) -> str:
    """" did you mean 'x'?" for the closest of ``choices`` to ``word``, or "" when none is close."""
    import difflib   # only on an error: the CLI's start-up stays lean

    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
