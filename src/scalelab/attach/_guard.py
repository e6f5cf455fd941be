"""Containment: a diagnostic never breaks the program it watches.

Every piece of scalelab that runs inside the user's ``fit`` or loop (building the view,
a probe, a check, a rule, the store write) runs through a :class:`Guard`. A failure
becomes one line, ``not probed: <what> (<reason>)``, printed with the findings and stored
with the run, and that piece is switched off for the rest of the run (a probe that failed
at step 3 would fail at step 4 too, and each try would cost the user time). The user's own
computation is never inside a guard: what their code raises reaches them unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager

# what containment catches: anything a diagnostic can raise, not the user's Ctrl-C or exit
CONTAINED = (Exception,)


def reason(e: BaseException) -> str:
    """One line saying what went wrong: the exception's type and its first line."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class Guard:
    """The "not probed" lines of one watched run, and the pieces switched off."""

    def __init__(self, lines: list[tuple[str, str]] | None = None):
        self.lines = lines if lines is not None else []   # (what, why), shown as "not probed: what (why)"
        self.off: set[str] = set()

    def note(self, what: str, why: str) -> None:
        if (what, why) not in self.lines:
            self.lines.append((what, why))

    def failed(self, what: str, e: BaseException) -> None:
        self.off.add(what)
        self.note(what, reason(e))

    @contextmanager
    def contained(self, what: str):
        """``with guard.contained("probes at step start"): ...``: a failure inside becomes
        a line; the code after the ``with`` runs as if nothing happened."""
        try:
            yield
        except CONTAINED as e:
            self.failed(what, e)

    def call(self, what: str, fn, *args, default=None, **kwargs):
        """``fn(*args, **kwargs)``, or ``default`` when it fails (or failed before: it stays off)."""
        if what in self.off:
            return default
        try:
            return fn(*args, **kwargs)
        except CONTAINED as e:
            self.failed(what, e)
            return default

    def wrap(self, what: str, fn, default=None):
        """``fn`` made safe: what :meth:`call` does, on every call."""
        def safe(*args, **kwargs):
            return self.call(what, fn, *args, default=default, **kwargs)
        safe.__wrapped__ = fn
        return safe

    def rendered(self) -> list[str]:
        return [f"not probed: {what} ({why})" for what, why in self.lines]
