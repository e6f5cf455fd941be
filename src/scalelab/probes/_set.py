"""The probe set of a group: the probes its spec asks for, run at their steps as an engine hook."""


from __future__ import annotations


import numpy as np
import torch

from ..engine import Hook
from ._activations import Activations
from ._adam_eps import AdamEps
from ._base import Probe, ProbeContext, Schedule
from ._records import PRESETS
from ._gradients import Gradients
from ._hessian import Hessian
from ._logits import Logits
from ._error_signal import ErrorSignal
from ._loss import Loss
from ._sample_loss import SampleLoss
from ._saturation import Saturation
from ._scales import Scales
from ._preact_step import PreactivationStep
from ._update_ratio import UpdateRatio
from ._zero_grad import ZeroGradient

PROBES: dict[str, type[Probe]] = {p.name: p for p in (Loss, Gradients, Logits, ZeroGradient, Activations,
                                                        UpdateRatio, PreactivationStep, AdamEps, Hessian,
                                                        SampleLoss, Scales, Saturation, ErrorSignal)}

def schedule_steps(total: int, kind: str = "log", points_per_decade: int = 8, every: int = 100) -> list[int]:
    """:meth:`Schedule.steps` of ``Schedule(kind, points_per_decade, every)``."""
    return Schedule(kind, points_per_decade, every).steps(total)


class ProbeSet(Hook):
    """The probes of one stacked group, run at the scheduled steps: a training hook."""

    def __init__(self, probes: list[Probe], schedule: str = "log", points_per_decade: int = 8, every: int = 100,
                 batch: int = 512, seed: int = 0, rows: str = "random"):
        self.probes = probes
        self.schedule, self.ppd, self.every, self.batch, self.seed = schedule, points_per_decade, every, batch, seed
        self.rows = rows   # "random": ``batch`` rows drawn once; "first:N": the first N training rows
        self.ctx: ProbeContext | None = None

    def on_group_start(self, view) -> None:
        self.applicable = [p for p in self.probes if p.applies(view)]
        total = view.total_steps
        default = Schedule(self.schedule, self.ppd, self.every)
        # each probe's own schedule, or the set's
        self.due_by_probe = {id(p): set((p.schedule or default).steps(total)) for p in self.applicable}
        self.due = set().union(*self.due_by_probe.values()) if self.applicable else set()
        self.total = total
        if self.rows.startswith("first:"):   # a fixed set the user names: the same rows in every run
            rows = np.arange(min(int(self.rows.split(":", 1)[1]), view.n_train))
        else:   # fixed probe rows, drawn from their own generator: training streams are untouched
            n = min(self.batch, view.n_train)
            rows = np.sort(np.random.default_rng([self.seed, 7]).choice(view.n_train, size=n, replace=False))
        self.probe_rows = torch.as_tensor(rows, device=view.device)

    def on_step_start(self, view) -> None:
        step = view.step
        if step not in self.due:
            return
        self.active = [p for p in self.applicable if step in self.due_by_probe[id(p)]]
        self.ctx = ctx = ProbeContext(view, step, view.batch, self.probe_rows)
        if any(p.needs_params_before for p in self.active):
            ctx.params_before = {k: p.detach().clone() for k, p in view.params.items()}
        if any(p.needs_forward for p in self.active):
            ctx.forward()  # now, before the update changes the parameters
        self._record(ctx, [p for p in self.active if p.phase == "before"])

    def on_step_end(self, view) -> None:
        ctx, self.ctx = self.ctx, None
        if ctx is None:
            return
        ctx.loss = view.loss
        self._record(ctx, [p for p in self.active if p.phase == "after"])

    def on_group_end(self, view) -> None:
        """The trained model (step = total): forward probes only, there is no further update."""
        self.active = [p for p in self.applicable if self.total in self.due_by_probe[id(p)]]
        if self.active:
            ctx = ProbeContext(view, self.total, None, self.probe_rows)
            self._record(ctx, [p for p in self.active if p.phase == "before"])

    def _record(self, ctx: ProbeContext, probes: list[Probe]) -> None:
        for p in probes:
            values = p.compute(ctx)
            if not values:
                continue
            names = list(values)
            table = torch.stack([values[n].detach().double().reshape(-1) for n in names], 1).cpu().numpy()
            ctx.view.record(ctx.step, p.name, names, table)


def make_probe_set(trials, preset: str | None = None) -> ProbeSet | None:
    """The probe set a group's spec asks for (``probes`` section), or ``preset`` instead."""
    cfg = trials[0].spec.probes
    preset = preset or cfg.preset
    if preset not in PRESETS:
        raise ValueError(f"probes preset {preset!r}: expected one of {', '.join(PRESETS)}")
    names = list(cfg.only or PRESETS[preset])
    if not names:
        return None
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise ValueError(f"unknown probe {unknown[0]!r}; probes are: {', '.join(PROBES)}")
    probes = [Hessian(cfg.hessian_batch, cfg.hessian_iters) if n == "hessian" else PROBES[n]() for n in names]
    for p in probes:  # the costliest probe every other point of a log schedule: half the cost
        if p.name == "hessian" and cfg.schedule == "log":
            p.schedule = Schedule("log", max(1, cfg.points_per_decade // 2))
    return ProbeSet(probes, cfg.schedule, cfg.points_per_decade, cfg.every, cfg.batch, rows=cfg.rows)
