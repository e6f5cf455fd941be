"""The in-place training step of a stacked group: its family's kernel, compiled where possible."""

from __future__ import annotations

from typing import Iterable

import torch

from ._chains import Params
from ._compile import compile_step, say_fallback
from ._families import group_family


class FusedOptimizer:
    """The in-place training step of a stacked group's optimizer.

    ``optimizers`` is the group's optimizer names, one per model, or a single name; the
    registry picks the family whose kernel trains them (:func:`group_family`). ``hp`` maps
    a hyperparameter name to per-parameter tensors (M, 1, 1) as built by
    :func:`group_hyperparameters`. With ``compile`` the whole step goes through
    torch.compile as one graph; if compiling fails (no C++ compiler, an unsupported
    platform) the same kernels run eagerly: the same operations, but not the same rounding
    (the compiler fuses and reorders float32 arithmetic), so ``on_fallback(what, exception)``
    hears of it and the caller records it. The family's moments
    are attributes by name (``opt.m``, ``opt.v``, ``opt.buf``): lists over :attr:`names`.
    """

    def __init__(self, optimizers: str | Iterable[str], params: Params, hp: dict, nesterov: bool = False,
                 compile: bool = False, on_fallback=None):
        fam = group_family([optimizers] if isinstance(optimizers, str) else optimizers)
        self.definition = fam
        self.family, self.nesterov = fam.name, nesterov
        self.names = list(params)
        self.t = 0
        lists = [[hp[k][n] for n in self.names] for k in fam.kernel_hyperparameters]
        self.moments = {m: [torch.zeros_like(params[n]) for n in self.names] for m in fam.moments}
        hp0 = {k: hp[k][self.names[0]] for k in fam.hyperparameters}
        self._state = lambda: (*self.moments.values(), *lists,  # noqa: E731
                               *fam.step_scalars(hp0, float(self.t), nesterov))
        kernel = fam.kernel
        self.kernel = kernel  # eager: kernel(params, grads, *next_step_args())
        self._on_fallback = on_fallback or say_fallback
        compiled = compile_step(kernel, lambda e: self._on_fallback("optimizer step", e)) if compile else None
        self._kernel = compiled or kernel
        self.compiled = self._kernel is not kernel

    def __getattr__(self, name):
        moments = self.__dict__.get("moments", {})
        if name in moments:
            return moments[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def next_step_args(self) -> tuple:
        """Advance the step counter and return the kernel's arguments after (params, grads):
        the optimizer state and this step's hyperparameters. For callers that run
        :attr:`kernel` inside a larger compiled graph (the engine's fused step)."""
        self.t += 1
        return self._state()

    @torch.no_grad()
    def step(self, params: Params, grads: Params, rows: dict | None = None) -> None:
        ps, gs = [params[n] for n in self.names], [grads[n] for n in self.names]
        args = self.next_step_args()
        if rows:  # row-sparse tables: grads[n] holds the gradient of rows[n] only (see _rows)
            self._step_rows(ps, gs, args, rows)
            return
        self._run(ps, gs, args)

    def _step_rows(self, ps, gs, args, rows: dict) -> None:
        fam = self.definition
        k = len(fam.moments) + len(fam.kernel_hyperparameters)
        lists, scalars = args[:k], args[k:]
        dense = [i for i, n in enumerate(self.names) if n not in rows]
        if dense:
            pick = lambda L: [L[i] for i in dense]  # noqa: E731
            self._run(pick(ps), pick(gs), (*map(pick, lists), *scalars))
        for i, n in enumerate(self.names):
            if n in rows:
                fam.row_kernel(ps[i], rows[n], gs[i], *(L[i] for L in lists), *scalars)

    def _run(self, ps, gs, args) -> None:
        try:
            self._kernel(ps, gs, *args)
        except Exception as e:  # a compiler failure surfaces on the first call
            if not self.compiled:
                raise
            self._on_fallback("optimizer step", e)
            self._kernel, self.compiled = self.kernel, False
            self._kernel(ps, gs, *args)
