"""One watched training run, whatever the framework: the probe set, the epochs, and the
trial it becomes in the store.

A watched run is stored as a trial of a study named by the user, so ``scalelab explain
--db DB NAME`` reads it exactly as a built-in study: its level (``{"input.scale":
"1/255"}``, or any label) says which runs to compare, and runs of the same level are its
seeds. The trial's spec is what the run is known to be (loss, its clip, optimizer, batch
size, epochs, and the level's keys where they name a spec field), so rules that read the
spec (the clip, the input scale) read the truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field

import torch

from .._spec import ProbesSpec, SpecError, TrialSpec
from .._spec._parse import _set_path
from .._store import Store
from ..probes import PRESETS, make_probe_set
from ._view import AttachedView

WATCH_QUESTION = "a watched run of the user's own training code"


@dataclass(frozen=True)
class WatchedTrial:
    """A watched run as the store keeps a trial: its level, seed and spec; its key tells
    levels apart even when their specs agree (a level that is only a label)."""

    study: str
    level: dict
    seed: int
    spec: TrialSpec

    @property
    def key(self) -> str:
        blob = json.dumps({"level": self.level, "seed": self.seed, "spec": self.spec.model_dump()}, sort_keys=True,
                          default=str)
        return "watch-" + hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class WatchedResult:
    """What :meth:`Store.save_trial` stores: the trial, its status, epochs and probe rows."""

    trial: WatchedTrial
    status: str = "done"
    diverged_step: int | None = None
    wall_s: float = 0.0
    epochs: list[dict] = field(default_factory=list)
    probes: list[tuple] = field(default_factory=list)
    reason: str | None = None          # why a trial failed (never: a watched run is stored as it ended)
    env: dict | None = None            # None: the environment the session passes to save_trial


def trial_spec(study: str, level: dict, known: dict, probes: ProbesSpec) -> TrialSpec:
    """The spec of a watched run: ``known`` sections (loss, optim, train, profile, model) and
    the level's keys that name a spec field (``input.scale`` also sets ``input.transform =
    "scale"``, as the built-in input-scaling study does); other level keys are labels only."""
    base = {"name": study, "question": WATCH_QUESTION, "seeds": 1, "probes": probes.model_dump(), **known}
    for k, v in level.items():
        trial = json.loads(json.dumps(base))
        _set_path(trial, k, v)
        if k == "input.scale":
            _set_path(trial, "input.transform", "scale")
        try:
            TrialSpec.model_validate_json(json.dumps(trial))
            base = trial
        except ValueError:
            continue   # a label (e.g. "variant"), not a spec field
    return TrialSpec.model_validate_json(json.dumps(base))


class Session:
    """Runs the probe set over an :class:`AttachedView`, collects epoch metrics and, at
    :meth:`finish`, stores the run and returns its findings."""

    def __init__(self, adapter, *, study: str, db: str, probes: str = "cheap", level: dict | None = None,
                 seed: int | None = None, probe_batch: int = 512, schedule: str = "log", points_per_decade: int = 8,
                 every: int = 100, known: dict | None = None, verbose: bool = True):
        if probes not in PRESETS:
            raise ValueError(f"probes={probes!r}: expected one of {', '.join(PRESETS)}")
        if not study or not all(c.isalnum() or c in "_.-" for c in study):
            raise ValueError(f"study={study!r}: use letters, digits, '_', '.' or '-' (it names the study in the store)")
        self.a, self.db, self.verbose = adapter, db, verbose
        self.level = dict(level or {})
        self.cfg = ProbesSpec(preset=probes, schedule=schedule, points_per_decade=points_per_decade, every=every,
                              batch=probe_batch)
        self.study, self.known, self.seed = study, known or {}, seed
        self.store = Store(db)
        # the study's id: one per name for watched runs, so every run of a script lands in it
        self.study_id = self.store.study_id(study, "watch-" + hashlib.sha256(study.encode()).hexdigest()[:10],
                                            {"name": study, "watched": True})
        self.seed = self._free_seed(seed)
        self.view: AttachedView | None = None
        self.probe_set = None
        self.epochs: list[dict] = []
        self._x: list[torch.Tensor] = []
        self._y: list[torch.Tensor] = []
        self._epoch_losses: list[tuple[float, int]] = []
        self.diverged_step: int | None = None
        self.t0 = time.perf_counter()
        self.finished = False

    def _free_seed(self, seed: int | None) -> int:
        taken = {t["seed"] for t in self.store.trials(self.study_id) if t["level"] == json.loads(json.dumps(self.level))}
        if seed is None:
            return next(s for s in range(len(taken) + 1) if s not in taken)
        if seed in taken:
            raise ValueError(f"study {self.study!r} in {self.db} already holds seed {seed} of level "
                             f"{self.level or '(base)'}; pass another seed= (or seed=None for the next free one)")
        return seed

    # -- the probe batch: fixed rows of the first training batches (or the user's own)

    @property
    def collecting(self) -> bool:
        return self.view is None and sum(len(x) for x in self._x) < self.cfg.batch

    def offer_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Keep rows of a training batch for the probe batch until it is full."""
        need = self.cfg.batch - sum(len(t) for t in self._x)
        if need > 0:
            self._x.append(x[:need].detach().clone())
            self._y.append(y[:need].detach().clone())

    def start(self, total_steps: int, steps_per_epoch: int, probe_data=None) -> None:
        """Build the view and the probe set (before the first update). ``probe_data=(x, y)``:
        the rows the probes pick their fixed batch from, as the built-in studies pick it from
        the training set; else the training rows seen so far."""
        if probe_data is not None:
            x, y = probe_data
            if len(x) != len(y):
                raise ValueError(f"probe_data: {len(x)} inputs but {len(y)} targets; pass (x, y) of the same rows")
        elif self._x:
            x, y = torch.cat(self._x), torch.cat(self._y)
        else:
            raise ValueError("no probe batch: pass probe_data=(x, y), or let the watcher see a training batch first")
        self.view = AttachedView(self.a, x, y, total_steps, steps_per_epoch)
        trial = WatchedTrial(self.study, self.level, self.seed, self._spec())
        self.probe_set = make_probe_set([trial]) if self.cfg.preset != "none" else None
        if self.probe_set is not None:
            self.probe_set.on_group_start(self.view)

    def _spec(self) -> TrialSpec:
        try:
            return trial_spec(self.study, self.level, self.known, self.cfg)
        except ValueError as e:
            raise SpecError(f"watched run: {str(e).splitlines()[0]}") from None

    # -- the training events

    def step_start(self) -> None:
        v = self.view
        v.refresh()
        if self.probe_set is not None:
            self.probe_set.on_step_start(v)

    def step_end(self, loss: float, n: int) -> None:
        v = self.view
        v.refresh()
        v.loss = torch.tensor([loss], dtype=torch.float64)
        if self.probe_set is not None:
            self.probe_set.on_step_end(v)
        if not math.isfinite(loss) and self.diverged_step is None:
            self.diverged_step = v.step
        self._epoch_losses.append((loss, n))
        v.step += 1

    def epoch_end(self, metrics: dict | None = None) -> dict:
        """Close an epoch: its training loss is the sample-weighted mean of its batch losses
        (what Keras reports), unless ``metrics`` gives one."""
        losses = self._epoch_losses
        n = sum(b for _, b in losses)
        row = {"epoch": len(self.epochs) + 1}
        if n:
            row["train_loss"] = sum(l * b for l, b in losses) / n
        row.update({k: float(v) for k, v in (metrics or {}).items() if v is not None})
        self.epochs.append(row)
        self._epoch_losses = []
        return row

    def finish(self):
        """The trained model's forward probes, the trial stored, its study's findings returned."""
        from .._explain import explain
        from .._study import environment

        if self.finished:
            return []
        self.finished = True
        if self._epoch_losses:
            self.epoch_end()
        v = self.view
        if v is None:
            self.store.close()
            return []
        if self.probe_set is not None:
            ps = self.probe_set
            if v.step != ps.total:   # the run ended before (or after) the planned steps: probe where it ended
                ps.total = v.step
                for steps in ps.due_by_probe.values():
                    steps.add(v.step)
            v.refresh()
            ps.on_group_end(v)
        trial = WatchedTrial(self.study, self.level, self.seed, self._spec())
        status = "diverged" if self.diverged_step is not None else "done"
        result = WatchedResult(trial, status, self.diverged_step, time.perf_counter() - self.t0, self.epochs,
                               v.records(0))
        env = {**environment(str(self.a.device)), "watched": self.a.framework,
               "skipped_layers": [f"{n}: {why}" for n, why in self.a.skipped]}
        self.store.save_trial(self.study_id, result, env)
        findings = [f for f in explain(self.store, self.study) if f.level == json.loads(json.dumps(self.level))]
        self.store.close()
        if self.verbose:
            print(self.summary(findings))
        return findings

    def summary(self, findings) -> str:
        from .._explain import render_text
        from .._levels import level_label

        lines = [f"scalelab: {self.study} / {level_label(self.level)} seed {self.seed} -> {self.db}"]
        lines += [f"  not probed: {n} ({why})" for n, why in self.a.skipped]
        lines.append(render_text(findings).rstrip())
        lines.append(f"  (all levels: scalelab explain --db {self.db} {self.study})")
        return "\n".join(lines)
