"""torch.compile for the training step, with a graph budget large enough for a whole study."""

from __future__ import annotations

import threading

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


def compile_step(fn):
    """``fn`` compiled (see :class:`_Compiled`), or None where torch.compile is unavailable."""
    try:
        return _Compiled(fn)
    except Exception:  # torch.compile unavailable on this platform/version
        return None


_prewarm: threading.Thread | None = None


def prewarm_cpu_compiler() -> None:
    """Start, in a background thread, the one piece of a CPU compile's set-up that waits on
    other processes: inductor's check of the vector instruction sets, which builds and
    loads a probe library in 4 child processes (~1 s on a 2-core CPU, in every process,
    cache or not). Started when a group decides to compile, it runs while the main thread
    imports the compiler and traces the step; the first compile then finds its answer
    cached. Changes nothing that is computed; once per process."""
    global _prewarm
    if _prewarm is not None:
        return

    def work():
        try:
            from torch._inductor import cpu_vec_isa

            cpu_vec_isa.valid_vec_isa_list()
        except Exception:   # whatever fails here fails again, and is reported, in the compile itself
            pass

    _prewarm = threading.Thread(target=work, name="scalelab-compile-prewarm", daemon=True)
    _prewarm.start()
