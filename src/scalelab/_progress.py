"""Progress of a running study on stderr: a compact bar that fits an 80-column terminal,
or, when stderr is not a terminal (a pipe, a log file, a batch job), one plain line every
``every`` seconds with the elapsed time, steps done / total and the ETA, and a last line
when the study ends. Where groups train in this process the rate is shown as model-epochs per
second (each group's step advances its M models by 1 / steps-per-epoch epoch), the unit in
which the engine's speed is measured."""

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
                 unit: str = "steps", per_step=None):
        self.name, self.total, self.every, self.stream, self.clock = name, max(total, 1), every, stream, clock
        self.unit = unit
        self.per_step = per_step   # () -> model-epochs per step of the group training now
        self.done = 0
        self.model_epochs = 0.0
        self.start = self.last = clock()

    def line(self) -> str:
        elapsed = self.clock() - self.start
        frac = self.done / self.total
        eta = _clock(elapsed * (1 - frac) / frac) if frac > 0 else "?"
        rate = f", {self.model_epochs / elapsed:.2f} model-epochs/s" if self.per_step and elapsed > 0 else ""
        return (f"{self.name}: {self.done}/{self.total} {self.unit} ({100 * frac:.0f}%), elapsed {_clock(elapsed)}, "
                f"ETA {eta}{rate}")

    def skip(self, n: int) -> None:
        """``n`` steps a checkpoint already holds: not trained now, so out of the total (they
        would make the ETA count time never spent)."""
        self.total = max(1, self.total - n)

    def advance(self, n: int) -> None:
        self.done += n
        if self.per_step is not None:
            self.model_epochs += n * self.per_step()
        if self.clock() - self.last >= self.every:
            self.last = self.clock()
            self._print()

    def _print(self) -> None:
        print(self.line(), file=self.stream or sys.stderr, flush=True)


@contextmanager
def study_progress(name: str, total: int, n_trials: int, n_groups: int, every: float = 30.0, unit: str = "steps",
                   per_step=None):
    """Yield a callback ``advance(n)`` that shows the study's progress on stderr, counted in
    ``unit`` (steps, or trials where groups run on other machines); with ``per_step`` (a
    callable: model-epochs per step now) also the rate in model-epochs per second."""
    stream = sys.stderr
    if not stream.isatty():
        p = PlainProgress(name, total, every, stream, unit=unit, per_step=per_step)
        print(f"{name}: {n_trials} trials in {n_groups} group(s), {total} {unit}", file=stream, flush=True)
        def advance(n: int) -> None:
            p.advance(n)

        advance.skip = p.skip
        yield advance
        p._print()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    label = name if len(name) <= 24 else name[:23] + "…"
    cols = [TextColumn(label), BarColumn(bar_width=16), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn()]
    if per_step is not None:
        cols.append(TextColumn("{task.fields[rate]}"))
    console = Console(file=stream)
    rate = ", model-epochs/s" if per_step is not None else ""
    console.print(f"{name}: {n_trials} trials in {n_groups} group(s); {unit} done/total, elapsed, ETA{rate}")
    with Progress(*cols, console=console, transient=False) as bar:
        task = bar.add_task("train", total=total, rate="")
        left = [total]

        def skip(n: int) -> None:   # steps a checkpoint holds: out of the total (see PlainProgress.skip)
            left[0] = max(1, left[0] - n)
            bar.update(task, total=left[0])

        start, done = time.monotonic(), [0.0]

        def advance(n: int) -> None:
            if per_step is None:
                bar.advance(task, n)
                return
            done[0] += n * per_step()
            elapsed = time.monotonic() - start
            bar.update(task, advance=n, rate=f"{done[0] / elapsed:.2f} m-ep/s" if elapsed > 0 else "")

        advance.skip = skip
        yield advance
