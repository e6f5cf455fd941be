"""The probe base class and the per-step context probes share.

A probe looks at a stacked group at chosen steps and returns, per quantity, one value
per model: a dict ``name -> tensor of shape (M,)``. It runs in one of two phases:

* ``before``: on the model as it is before step s's update (forward quantities on a
  fixed probe batch: activations, logits, zero-gradient share, curvature);
* ``after``: right after that update (the step's gradient, the update, Adam's state).

Probes only read: they run under ``no_grad`` or on detached copies, draw no random
numbers from the training streams and never touch the optimizer, so training with
probes equals training without them (tested).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch


class ProbeContext:
    """What the due probes of one step share: the group's read-only view (see
    :class:`scalelab.engine.StepView`), the probe batch's forward pass (computed once,
    lazily) and the parameters before the update."""

    def __init__(self, view, step: int, idx: torch.Tensor, probe_rows: torch.Tensor):
        self.view = view
        self.step = step
        self.idx = idx                     # the training batch of this step, (M, b)
        self.probe_rows = probe_rows       # fixed training rows for forward probes, (n,)
        self.params_before: dict[str, torch.Tensor] | None = None
        self.loss: torch.Tensor | None = None   # this step's batch loss (M,), set after the step
        self._forward = None

    def probe_batch(self, n: int | None = None):
        """(x, y) of the probe batch, the same rows for every model: x (M, n, D), y (M, n)."""
        return self.view.training_rows(self.probe_rows if n is None else self.probe_rows[:n])

    def forward(self):
        """The probe batch through the current model: (x, y, taps, out, per-sample loss)."""
        if self._forward is None:
            with torch.no_grad():
                x, y = self.probe_batch()
                taps: dict = {}
                per, out = self.view.per_sample(self.view.params, x, y, taps)
            self._forward = (x, y, taps, out, per)
        return self._forward


class Schedule:
    """The steps (0 .. total) at which a probe runs: ``log`` spaces them evenly in
    log10(step + 1) with ``points_per_decade`` (dense early, where scale problems show);
    ``linear`` every ``every`` steps. Step 0 and the last step (the trained model) are always in."""

    def __init__(self, kind: str = "log", points_per_decade: int = 8, every: int = 100):
        if kind not in ("log", "linear"):
            raise ValueError(f"probes.schedule = {kind!r}: expected 'log' or 'linear'")
        self.kind, self.points_per_decade, self.every = kind, points_per_decade, every

    def steps(self, total: int) -> list[int]:
        import math

        if self.kind == "linear":
            steps = set(range(0, total + 1, max(1, self.every)))
        else:
            n = int(math.ceil(math.log10(total + 1) * self.points_per_decade))
            steps = {int(round(10 ** (i / self.points_per_decade))) - 1 for i in range(n + 1)}
        return sorted(s for s in steps | {0, total} if 0 <= s <= total)


class Probe:
    """One diagnostic. Subclasses set ``name``, ``phase``, ``cost`` and ``quantities`` and implement
    ``_compute(ctx) -> {quantity: tensor (M,)}``; ``applies(view)`` says whether the probe
    makes sense for a group, from its view (e.g. Adam's eps share only under Adam). ``schedule`` says at
    which steps it runs (None: the probe set's schedule)."""

    schedule: Schedule | None = None

    name: ClassVar[str]
    # The quantity names it records: plain names, or patterns with {param} (a parameter's
    # name such as "dense0.W"), {layer} (a layer index) or {cls} (a class index). Explain,
    # report and html read records through these constants, never through repeated strings.
    quantities: ClassVar[tuple[str, ...]] = ()
    phase: ClassVar[str] = "before"        # "before" or "after" the step's update
    cost: ClassVar[int] = 1                # relative cost, for ranking presets
    needs_params_before: ClassVar[bool] = False
    needs_forward: ClassVar[bool] = False  # reads the probe batch's forward pass of the model *before* the update

    def applies(self, view) -> bool:
        return True

    def compute(self, ctx: ProbeContext) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self._compute(ctx)

    def _compute(self, ctx: ProbeContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def plain_mlp(view) -> bool:
    """Every layer hands probes a tap (pre{i} or act{i}: dense layers and activations, see
    ``Layer.taps``): the chain the per-layer forward probes read."""
    return all(layer.taps for layer in view.layers)


def rms(t: torch.Tensor, dims) -> torch.Tensor:
    return t.pow(2).mean(dim=dims).sqrt()


def median(t: torch.Tensor) -> torch.Tensor:
    """Median over dim 1 of (M, n), the mean of the two middle values when n is even (as
    numpy's; torch.median takes the lower one)."""
    n = t.shape[1]
    if n >= 4096 and t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64):
        a = t.detach().numpy()
        if np.isfinite(a).all():   # (numpy and torch may order NaN differently: those go to torch)
            # one selection pass (the lower middle value is the largest left of it): 10x faster than two
            # kthvalue passes on the 100k-entry kernels the adam_eps probe reads; the same order statistics,
            # the same mean of them
            part = np.partition(a, n // 2, axis=1)
            hi = torch.from_numpy(part[:, n // 2].copy())
            return hi if n % 2 else 0.5 * (torch.from_numpy(part[:, : n // 2].max(axis=1)) + hi)
    # selection, not a full sort: 3x faster than one
    hi = t.kthvalue(n // 2 + 1, dim=1).values
    return hi if n % 2 else 0.5 * (t.kthvalue(n // 2, dim=1).values + hi)
