"""Progress of a running study on stderr: a compact bar that fits an 80-column terminal,
or, when stderr is not a terminal (a pipe, a log file, a batch job), one plain line every
``every`` seconds with the elapsed time, steps done / total and the ETA, and a last line
when the study ends."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class PlainProgress:
    """``advance(n)`` after each n steps; prints a line when ``every`` seconds have passed."""

    def __init__(self, name: str, total: int, every: float = 30.0, stream=None, clock=time.monotonic,
                 unit: str = "steps"):
        self.name, self.total, self.every, self.stream, self.clock = name, max(total, 1), every, stream, clock
        self.unit = unit
        self.done = 0
        self.start = self.last = clock()

    def line(self) -> str:
        elapsed = self.clock() - self.start
        frac = self.done / self.total
        eta = _clock(elapsed * (1 - frac) / frac) if frac > 0 else "?"
        return (f"{self.name}: {self.done}/{self.total} {self.unit} ({100 * frac:.0f}%), elapsed {_clock(elapsed)}, "
                f"ETA {eta}")

    def advance(self, n: int) -> None:
        self.done += n
        if self.clock() - self.last >= self.every:
            self.last = self.clock()
            self._print()

    def _print(self) -> None:
        print(self.line(), file=self.stream or sys.stderr, flush=True)


@contextmanager
def study_progress(name: str, total: int, n_trials: int, n_groups: int, every: float = 30.0, unit: str = "steps"):
    """Yield a callback ``advance(n)`` that shows the study's progress on stderr, counted in
    ``unit`` (steps, or trials where groups run on other machines)."""
    stream = sys.stderr
    if not stream.isatty():
        p = PlainProgress(name, total, every, stream, unit=unit)
        print(f"{name}: {n_trials} trials in {n_groups} group(s), {total} {unit}", file=stream, flush=True)
        yield p.advance
        p._print()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    label = name if len(name) <= 24 else name[:23] + "…"
    cols = [TextColumn(label), BarColumn(bar_width=16), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn()]
    console = Console(file=stream)
    console.print(f"{name}: {n_trials} trials in {n_groups} group(s); {unit} done/total, elapsed, ETA")
    with Progress(*cols, console=console, transient=False) as bar:
        task = bar.add_task("train", total=total)
        yield lambda n: bar.advance(task, n)
