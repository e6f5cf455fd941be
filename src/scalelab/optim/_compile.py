"""torch.compile for the training step, with a graph budget large enough for a whole study,
and the record of which arithmetic a step ran: compiled or eager, and on which vector
instruction set. The two are not the same arithmetic (the compiler fuses and reorders
float32 operations): a study's numbers depend on the path, so every trial stores it."""

from __future__ import annotations

import sys

import torch


class _Compiled:
    """``fn`` under torch.compile, one graph per shape. A study trains one group after
    another, each of its own shapes, through the same function: past dynamo's default of 8
    graphs per function the 9th group's step failed over to eager, 3.5x slower (measured).
    The call that compiles may therefore add a graph beyond that limit; later calls of the
    same group hit the graph it made."""

    GRAPHS_PER_FUNCTION = 4096

    def __init__(self, fn):
        # dynamic=False: the shapes never change within a group, and the guards check them
        # already, so the per-call size asserts are redundant (39 calls a step in the engine)
        self._fn = torch.compile(fn, dynamic=False, fullgraph=True, options={"size_asserts": False})
        self._warm = False

    def __call__(self, *args):
        if self._warm:
            return self._fn(*args)
        limit = self.GRAPHS_PER_FUNCTION
        with torch._dynamo.config.patch(recompile_limit=limit, accumulated_recompile_limit=limit):
            out = self._fn(*args)
        self._warm = True
        return out


def compile_step(fn, on_error=None):
    """``fn`` compiled (see :class:`_Compiled`), or None where torch.compile is unavailable;
    ``on_error(exception)`` hears why (the caller then runs ``fn`` eagerly and says so)."""
    try:
        return _Compiled(fn)
    except Exception as e:  # torch.compile unavailable on this platform/version
        if on_error is not None:
            on_error(e)
        return None


def compile_error_line(e: BaseException) -> str:
    """An exception of the compiler as one short line (its messages run to pages)."""
    text = " ".join(str(e).split(" Set TORCHDYNAMO_VERBOSE")[0].split())
    return f"{type(e).__name__}: {text[:200]}{'…' if len(text) > 200 else ''}"


def say_fallback(what: str, e: BaseException) -> str:
    """Print, on stderr and whatever the verbosity, the one line of a compile that failed over
    to eager; returns the recorded reason."""
    reason = compile_error_line(e)
    print(f"scalelab: torch.compile of the {what} failed ({reason}); running eagerly: slower, and the numbers "
          f"differ from a compiled run in the last float32 digits (recorded in each trial's environment)",
          file=sys.stderr, flush=True)
    return reason


def vec_isa() -> str | None:
    """The vector instruction set the CPU compiler generates code for (avx512, avx2, …; None
    where it found none). Call only after a compile: it reads the compiler's cached answer."""
    try:
        from torch._inductor import cpu_vec_isa

        return str(cpu_vec_isa.pick_vec_isa()) or None
    except Exception:
        return None


# There is no background "prewarm" of the compiler any more. One used to run inductor's
# check of the vector instruction sets in a thread (it builds and loads a probe library,
# ~1 s on a 2-core CPU) while the main thread went on to torch.compile. Both threads then
# imported the compiler's circularly dependent modules (torch._inductor <-> torch._dynamo,
# torch.utils._sympy) at once, and one of them saw a partially initialised module:
# torch.compile raised ImportError or ModuleNotFoundError, the study ran eagerly without a
# word and its numbers changed (1 of 8 fresh runs on an idle 2-core machine, 1 of 2 beside
# two CPU-bound processes). Importing the modules first in the main thread only moved the
# race to the thread's own lazy imports during the build (ModuleNotFoundError
# 'torch.utils._sympy.reference', seen here). The check now runs in the compile itself,
# in one thread: benchmarks/compile_fallback.py shows the race and that it is gone.
