"""The training loop of one stacked group: epochs of steps, evaluation, hooks, results."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .._runtime import flush_denormals
from .._spec import Trial
from . import _checkpoint
from ._group import StackedGroup
from ._hooks import Hook, StepCounter
from ._keep import Keeper
from ._view import StepView


@dataclass
class TrialResult:
    trial: Trial
    status: str                           # "done", "diverged" (an outcome) or "failed" (no outcome: see reason)
    diverged_step: int | None
    epochs: list[dict]                    # per-epoch metrics
    wall_s: float
    probes: list[tuple] = field(default_factory=list)   # (step, probe, name, value)
    reason: str | None = None             # why a trial failed
    env: dict | None = None               # where it ran, when an executor ran it elsewhere
    # seconds inside the training steps only (no setup, evaluation or hooks), the group's / M like wall_s
    train_s: float | None = None
    path: dict | None = None              # which arithmetic ran (StackedGroup.path): stored in the trial's env
    # train.keep: {"which": "final" | "best", "epoch": n, "arrays": {name: ndarray}} (engine/_keep.py)
    kept: dict | None = None
    fields: dict = field(default_factory=dict)   # what hooks put (StepView.put), e.g. scored-row probabilities


class ComputePathError(ValueError):
    """A resume would continue a group or study on the other arithmetic (compiled vs eager,
    or another vector instruction set) than its stored part ran on."""


def path_key(path: dict | None) -> str | None:
    """What must agree within a study: a wanted compile's outcome (``compiled (avx512)`` or
    ``eager: torch.compile failed``); None for steps eager by plan, or not recorded."""
    if not path:
        return None
    if path.get("compile_error"):
        return "eager (torch.compile failed)"
    if path.get("step") == "compiled":
        return f"compiled ({path.get('vec_isa') or path.get('cpu_capability') or 'no vector instruction set'})"
    return None


def check_path(now: dict, before: str | None, where: str) -> None:
    """Refuse, in one line, to go on with ``now`` where the stored part ran on ``before``."""
    key = path_key(now)
    if before is None or key is None or key == before:
        return
    how = ("fix the compiler (the line above says why it failed) and rerun" if before.startswith("compiled") else
           "rerun with SCALELAB_COMPILE=0 to go on eagerly like them (where the spec leaves train.compile unset)")
    raise ComputePathError(
        f"{where} ran {before} but this process runs {key}; the two round float32 differently, so a study "
        f"must not mix them: {how}, or start the study over in a new --db")


def train_group(trials: list[Trial], data_dir: str | None = None, device: str | None = None,
                on_steps: Callable[[int], None] | None = None, probes: Hook | None = None,
                hooks: list[Hook] = (), start: dict | None = None,
                checkpoint: Callable[[int, dict], None] | None = None,
                expect_path: str | None = None) -> list[TrialResult]:
    """Train a group of same-shaped trials together; one result per trial, in order.

    ``hooks`` receive the group's events (see :class:`Hook`); ``probes`` (a probe set) and
    ``on_steps`` (a progress callback) are two such hooks, kept as arguments for brevity.
    ``checkpoint(epoch, state)`` receives the state after every epoch but the last
    (:func:`scalelab.engine.capture`); ``start`` (such a state, e.g. decoded from a store)
    continues from there, and the results equal those of an uninterrupted run bit for bit.
    ``expect_path`` (a :func:`path_key`): the path the study's stored trials ran; the group
    stops with :class:`ComputePathError` after its first step on another one, and so does a
    resume from a checkpoint written on another path.
    """
    hooks = [*([probes] if probes is not None else []), *hooks,
             *([StepCounter(on_steps)] if on_steps is not None else [])]
    with flush_denormals(trials[0].spec.train.flush_denormals):
        return _train_group(trials, data_dir, device, hooks, start, checkpoint, expect_path)


def train_unit(group: list[Trial], data_dir=None, device=None, factories: tuple = (),
               start: dict | None = None, checkpoint: Callable | None = None,
               expect_path: str | None = None) -> list[TrialResult]:
    """A unit of a grid study: the group on :func:`~scalelab.engine.train_group` with the
    hooks its ``factories`` build. A study kind with units of its own passes executors
    another such call (``Stage.train``: the cross-validated study's)."""
    built = [h for h in (factory(group) for factory in factories) if h is not None]
    return train_group(group, data_dir, device, hooks=built, start=start, checkpoint=checkpoint,
                       expect_path=expect_path)


def _train_group(trials, data_dir, device, hooks: list[Hook], start, checkpoint, expect_path) -> list[TrialResult]:
    t0 = time.perf_counter()
    g = StackedGroup(trials, data_dir, device)
    view = StepView(g)
    keeper = Keeper(g)
    M, dev = g.M, g.device
    first_bad = torch.full((M,), -1, dtype=torch.int64, device=dev)
    history: list[list[dict]] = [[] for _ in range(M)]
    done, wall_before = 0, 0.0
    train_s = 0.0
    where = "this study's stored trials"
    if start is not None:
        history, first_bad, done, wall_before = _checkpoint.restore(g, view, start)
        train_s = start["meta"].get("train_s", math.nan)     # nan: a checkpoint written before it was recorded
        if "path" in start["meta"]:
            expect_path, where = path_key(start["meta"]["path"]), f"this group's first {done} epoch(s)"
        keeper.restore(start)
    view.history, view.keeper, view._resumed_at = history, keeper, g.step
    checked = False
    for h in hooks:
        h.on_group_start(view)
    for epoch in range(done + 1, g.epochs + 1):
        perm = g.permutations()
        step0 = g.step
        # The epoch's sums are taken once at its end (see _epoch_sums), not with a few small
        # tensor operations after each step (~0.5 s of a 50 s study on a CPU). Each step keeps
        # its losses (M,); correct predictions are counted for 64 steps at a time.
        losses, sizes, hits, pending = [], [], [], []
        for s in range(min(g.steps_per_epoch, g.total_steps - (epoch - 1) * g.steps_per_epoch)):   # train.steps cuts the last
            idx = perm[:, s * g.batch_size: (s + 1) * g.batch_size]
            view.batch, view.loss = idx, None
            for h in hooks:
                h.on_step_start(view)
            t_step = time.perf_counter()
            loss, out, y = g.train_step(idx)
            train_s += time.perf_counter() - t_step
            if not checked:   # the first step settles the path (a failed compile falls back in it)
                check_path(g.path(), expect_path, where)
                checked = True
            view.loss = loss
            for h in hooks:
                h.on_step_end(view)
            losses.append(loss)
            sizes.append(idx.shape[1])
            if g.classification:
                _count_hits(pending, hits, out, y)
        _count_hits(pending, hits)
        train_loss, correct, first_bad = _epoch_sums(losses, sizes, hits, step0, first_bad)
        seen = sum(sizes)
        train_loss = train_loss / seen
        train_acc = correct / seen if g.classification else np.full(M, np.nan)
        ev = {"val": g.evaluate(g.X_val, g.y_val), "test": g.evaluate(g.X_test, g.y_test)}
        for m in range(M):
            rec = dict(epoch=epoch, train_loss=float(train_loss[m]), train_acc=float(train_acc[m]))
            for part, r in ev.items():
                rec.update({f"{part}_{k}": float(v[m]) for k, v in r.items()})
            history[m].append(rec)
        keeper.on_epoch(epoch, [hist[-1] for hist in history])
        view._stop.clear()
        for h in hooks:
            h.on_epoch_end(view, epoch, [hist[-1] for hist in history])
        if len(view._stop) == M:   # every model asked to stop (view.stop): the group's training ends here
            break
        if checkpoint is not None and epoch < g.epochs:
            state = _checkpoint.capture(g, view, history, first_bad, epoch, wall_before + time.perf_counter() - t0)
            state["meta"]["train_s"] = train_s
            state["meta"]["path"] = g.path()
            keeper.capture(state)
            checkpoint(epoch, state)
    keeper.put_back()   # held best states (view.keep_best) replace the last ones
    for h in hooks:
        h.on_group_end(view)
    wall = wall_before + time.perf_counter() - t0
    bad_steps = first_bad.cpu().tolist()
    path = g.path()
    return [TrialResult(t, "diverged" if bad_steps[m] >= 0 else "done",
                        bad_steps[m] if bad_steps[m] >= 0 else None, history[m], wall / M, view.records(m),
                        train_s=None if math.isnan(train_s) else train_s / M, path=path,
                        kept=keeper.result(m, len(history[m])), fields=view.fields(m))
            for m, t in enumerate(trials)]


def _epoch_sums(losses: list, sizes: list[int], hits: list, step0: int, first_bad: torch.Tensor):
    """An epoch's training loss sum (float64, (M,)), correct predictions (float64, (M,)) and the
    updated first non-finite step of each model, from its steps' losses (M,), batch sizes and
    (classification) counts of correct predictions (M,).

    Keras's epoch loss is the running mean of batch losses weighted by batch size: the sum
    is accumulated step by step, in step order, in float64 exactly as a running ``+=`` would
    (``np.add.accumulate`` adds strictly in sequence; a pairwise sum would change the last
    bits). A float32 loss × batch size is exact in float64 (a float64 one rounds once, as
    before). Counts are integers: any order."""
    L = torch.stack(losses).detach().cpu().numpy()                      # (steps, M)
    terms = np.concatenate([np.zeros((1, L.shape[1])), L.astype(np.float64) * np.asarray(sizes, np.float64)[:, None]])
    loss_sum = np.add.accumulate(terms, axis=0)[-1]
    correct = None
    if hits:
        correct = torch.stack(hits).sum(0).double().cpu().numpy()
    bad = ~np.isfinite(L)
    if bad.any():
        first = np.where(bad.any(0), step0 + 1 + bad.argmax(0), -1)
        fb = first_bad.cpu().numpy()
        first_bad = torch.as_tensor(np.where((fb < 0) & (first >= 0), first, fb), device=first_bad.device)
    return loss_sum, correct, first_bad


def _count_hits(pending: list, hits: list, out=None, y=None, every: int = 64) -> None:
    """Add a step's (outputs, targets) to ``pending``; count the correct predictions of the
    pending steps per model into ``hits`` (one (M,) tensor) once ``every`` steps are pending,
    when the batch shape changes (a short last batch), or, called without a step, at once.
    Three operations per 64 steps instead of per step; counts are exact in any grouping."""
    if pending and (out is None or len(pending) >= every or out.shape != pending[0][0].shape):
        outs, ys = zip(*pending)
        hits.append((torch.stack(outs).argmax(-1) == torch.stack(ys)).sum((0, 2)))
        pending.clear()
    if out is not None:
        pending.append((out, y))
