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

import numpy as np
import torch

from .._spec import ProbesSpec, SpecError, TrialSpec
from .._spec._parse import _set_path
from .._store import Store
from ..probes._records import PRESETS
from ..probes._set import make_probe_set
from . import _one_run
from ._checks import before_first_step
from ._guard import Guard
from ._one_run import PROBE
from ._view import AttachedView, to_numpy

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


def validate(study: str, probes: str) -> None:
    """The user's arguments, checked where they wrote them (before training starts)."""
    if probes not in PRESETS:
        raise ValueError(f"probes={probes!r}: expected one of {', '.join(PRESETS)}")
    if not study or not all(c.isalnum() or c in "_.-" for c in study):
        raise ValueError(f"study={study!r}: use letters, digits, '_', '.' or '-' (it names the study in the store)")


class Session:
    """Runs the probe set over an :class:`AttachedView`, collects epoch metrics and, at
    :meth:`finish`, stores the run and returns its findings."""

    def __init__(self, adapter, *, study: str, db: str, probes: str = "cheap", level: dict | None = None,
                 seed: int | None = None, probe_batch: int = 512, schedule: str = "log", points_per_decade: int = 8,
                 every: int = 100, known: dict | None = None, verbose: bool = True, guard: Guard | None = None):
        validate(study, probes)
        self.a, self.db, self.verbose = adapter, db, verbose
        # every "not probed" line of the run: the adapter's (layers it cannot tap) and the guard's
        self.guard = guard if guard is not None else Guard(adapter.skipped)
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
        # what the rules that need one run read (see _one_run), and the checks before the first step
        self.desc = None
        self.extra: list[tuple] = []
        self.checks: list = []
        self._checked = False
        self._labels: list[np.ndarray] = []      # the first epoch's labels, in training order
        self._weights: list = []                 # and their sample weights (None: unweighted)
        self._label_rows = 0
        self._start_state: dict = {}

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
        self.probe_data = probe_data
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
            for p in self.probe_set.probes:   # one probe that fails is one line; the others go on
                object.__setattr__(p, "compute", self.guard.wrap(f"probe {p.name}", p.compute, default={}))
            self.probe_set.on_group_start(self.view)
        self.guard.call("the model's description", self._describe)

    def _describe(self) -> None:
        """Before the first update: the model as the user wrote it, its weights' size and its
        units on the first probe rows (what the checks before the first step read)."""
        v = self.view
        rows = torch.arange(min(256, v.n_train), device=v.device)
        x, y = v.training_rows(rows)
        self.desc = self.a.describe(x[0])
        self._start_state = {"weight_rms": self.a.weight_rms(), "spreads": self.a.weight_spreads(),
                             "x": to_numpy(v.raw_rows(rows)[0]),
                             "y": to_numpy(v.raw_rows(rows)[1])}
        self._start_state["units"] = units = self.guard.call("unit states at step 0", self._unit_states, x, default={})
        self.extra += [(0, PROBE, k, val) for k, val in units.items()]

    def _unit_states(self, x) -> dict:
        taps: dict = {}
        with torch.no_grad():
            self.view.forward(self.view.params, x, taps)
        taps = {k: t.detach().cpu().numpy() for k, t in taps.items() if isinstance(t, torch.Tensor)}
        return _one_run.unit_states(taps, self.a.unit_layers())

    def observe(self, y, sample_weight=None) -> None:
        """A training batch's targets (and sample weights), in the order training sees them (the first epoch's)."""
        if not self.epochs and self._label_rows < 10 ** 6 and y is not None:
            y = to_numpy(y)
            self._labels.append(y)
            self._weights.append(None if sample_weight is None else to_numpy(sample_weight).reshape(-1))
            self._label_rows += len(y)

    def _run_checks(self) -> None:
        """The checks before the first step, on the labels of the first epoch (or probe_data's)."""
        if self._checked:
            return
        self._checked = True
        if self.desc is None:   # no probe view (a model the probes cannot call): the model as registered
            self.desc = self.a.describe(None)
        d, st = self.desc, self._start_state
        y = np.concatenate([np.asarray(b).reshape(len(b), *np.shape(b)[1:]) for b in self._labels]) \
            if self._labels else st.get("y")
        if self.probe_data is not None:
            y = to_numpy(self.probe_data[1])
        total = self.view.total_steps if self.view is not None and self.view.total_steps < 10 ** 6 else None
        if total is None and d.epochs and d.steps_per_epoch:
            total = d.epochs * d.steps_per_epoch
        self.checks = before_first_step(d, st.get("x"), y, weight_rms=st.get("weight_rms"), total_steps=total,
                                         spreads=st.get("spreads"), units=st.get("units"),
                                         unit_names={i: n for i, n, _ in self.a.unit_layers()})
        self.checks += self.a.loop_checks(d) if hasattr(self.a, "loop_checks") else []
        if _one_run.labels_sorted(self._labels):
            from . import _fixes
            from ._checks import _f
            self.checks.append(_f("sorted-labels", "cause", "the labels reach training sorted by class (the first "
                                  "epoch's batches go through the classes in order): each stretch of steps pulls the "
                                  "model toward one class", _fixes.sorted_labels(d), fired="batches",
                                  batches=len(self._labels)))
        w = None
        if self._labels and self.probe_data is None and all(b is not None for b in self._weights):
            w = np.concatenate(self._weights)
        if y is not None:
            self.extra += [(0, PROBE, k, v) for k, v in _one_run.label_references(d, y, w).items()]

    probe_data = None

    def _spec(self) -> TrialSpec:
        try:
            return trial_spec(self.study, self.level, self.known, self.cfg)
        except ValueError as e:
            raise SpecError(f"watched run: {str(e).splitlines()[0]}") from None

    # -- the training events

    @property
    def step(self) -> int:
        return self._step

    _step = 0

    def step_start(self) -> None:
        v = self.view
        if v is None:
            return
        v.step = self._step
        v.refresh()
        if self.probe_set is not None:
            self.guard.call("probes before the update", self.probe_set.on_step_start, v)

    def step_end(self, loss: float, n: int) -> None:
        """The step's batch loss (recorded whatever else failed) and the probes after the update."""
        if not math.isfinite(loss) and self.diverged_step is None:
            self.diverged_step = self._step
        self._epoch_losses.append((loss, n))
        v = self.view
        if v is not None:
            v.refresh()
            v.loss = torch.tensor([loss], dtype=torch.float64)
            if self.probe_set is not None and "probes before the update" not in self.guard.off:
                self.guard.call("probes after the update", self.probe_set.on_step_end, v)
            if self._step & (self._step - 1) == 0 or self._step == 0:   # steps 0, 1, 2, 4, 8, ...
                self.extra += [(self._step, PROBE, k, g) for k, g in
                               self.guard.call("gradient sizes", self.a.grad_rms, default={}).items()]
        self._step += 1

    def steps_end(self, steps: int, first_nonfinite: int | None = None) -> None:
        """Steps with nothing due after them (no probe, no gradient sizes), as the compiled-step observer
        sees them: how many, and which of them (0: the first) first had a loss that was not finite. Their
        losses are in the epoch's loss, which that observer's callback hands to :meth:`epoch_end`."""
        if first_nonfinite is not None and self.diverged_step is None:
            self.diverged_step = self._step + first_nonfinite
        self._step += steps
        if steps and self.view is not None:
            self.view.refresh()

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
        if len(self.epochs) == 1:
            self.guard.call("the checks before the first step", self._run_checks)
        return row

    def finish(self):
        """The trained model's forward probes, the trial stored, its study's findings returned:
        each piece contained, so what fails is a "not probed" line and the rest still runs."""
        if self.finished:
            return []
        self.finished = True
        g = self.guard
        if self._epoch_losses:
            self.epoch_end()
        g.call("the checks before the first step", self._run_checks)
        v = self.view
        if v is not None and self.probe_set is not None and "probes before the update" not in g.off:
            g.call("probes on the trained model", self._probe_end, v)
        if v is not None:
            g.call("the trained model's predictions", self._final_state, v)
        findings = []
        if v is not None or self._step:
            if g.call("the store write", self._save) is not None:
                findings = g.call("the rules", self._findings, default=[])
        g.call("closing the store", self.store.close)
        if self.verbose:
            print(self.summary(findings))
        return findings

    def _probe_end(self, v) -> None:
        ps = self.probe_set
        v.step = self._step
        if v.step != ps.total:   # the run ended before (or after) the planned steps: probe where it ended
            ps.total = v.step
            for steps in ps.due_by_probe.values():
                steps.add(v.step)
        v.refresh()
        ps.on_group_end(v)

    def _final_state(self, v) -> None:
        v.refresh()
        rows = torch.arange(min(256, v.n_train), device=v.device)
        x, y = v.training_rows(rows)
        taps: dict = {}
        with torch.no_grad():
            out = v.a.forward(v.params, x[0], taps)
        taps = {k: t.detach().cpu().numpy() for k, t in taps.items() if isinstance(t, torch.Tensor)}
        rows_ = dict(_one_run.unit_states(taps, self.a.unit_layers()))
        if self.desc is not None:
            rows_.update(_one_run.predictions(self.desc, to_numpy(self.a.model_output(out)),
                                              to_numpy(v.raw_rows(rows)[1])))
        self.extra += [(self._step, PROBE, k, val) for k, val in rows_.items()]

    def _save(self) -> bool:
        from .._study import environment

        trial = WatchedTrial(self.study, self.level, self.seed, self._spec())
        status = "diverged" if self.diverged_step is not None else "done"
        records = (self.view.records(0) if self.view is not None else []) + self.extra
        result = WatchedResult(trial, status, self.diverged_step, time.perf_counter() - self.t0, self.epochs, records)
        env = {**environment(str(getattr(self.a, "device", "cpu"))), "watched": self.a.framework,
               "skipped_layers": [f"{n}: {why}" for n, why in self.guard.lines],
               "model": self.desc.as_dict() if self.desc is not None else None,
               "checks": [{**f.as_dict(), "role": f.role, "at": f.at} for f in self.checks]}
        self.store.save_trial(self.study_id, result, env)
        return True

    def _findings(self) -> list:
        from .._explain import explain

        return [f for f in explain(self.store, self.study) if f.level == json.loads(json.dumps(self.level))]

    def summary(self, findings) -> str:
        from .._explain import render_text
        from .._format import level_label

        lines = [f"scalelab: {self.study} / {level_label(self.level)} seed {self.seed} -> {self.db}"]
        lines += [f"  {line}" for line in self.guard.rendered()]
        lines.append(render_text(findings).rstrip() if findings or self._step else
                     "No findings: training ended before scalelab saw a step.")
        lines.append(f"  (all levels: scalelab explain --db {self.db} {self.study})")
        return "\n".join(lines)
