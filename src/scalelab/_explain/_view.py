"""The explain rules' view of one sweep level (or one trial): its seeds' probe series,
final metrics and typed spec, built from the shared store reader in :mod:`scalelab._levels`."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from .._format import level_label

from .._store._levels import LevelRecord, TrialRecord, read_levels
from .._spec import TrialSpec
from .._store import Store


def key(probe: type, pattern: str, **fields) -> tuple[str, str]:
    """The ``(probe name, quantity name)`` a series is stored under, from a probe class and
    one of its quantity patterns: ``key(UpdateRatio, UpdateRatio.RMS, param="dense0.W")``."""
    return probe.name, pattern.format(**fields)


def match(pattern: str, name: str) -> dict | None:
    """The fields of a quantity name that fits a pattern (``"act{layer}.dead_frac"`` and
    ``"act1.dead_frac"`` give ``{"layer": "1"}``), or None when it does not fit."""
    regex = "".join(f"(?P<{p[1:-1]}>.+?)" if p.startswith("{") else re.escape(p)
                    for p in re.split(r"(\{\w+\})", pattern) if p)
    m = re.fullmatch(regex, name)
    return m.groupdict() if m else None


@dataclass
class LevelView:
    """One sweep level (or one trial): its seeds' probe series and final metrics."""

    level: dict
    spec: TrialSpec
    n_seeds: int
    series: dict = field(default_factory=dict)   # (probe, name) -> {step: np.array over seeds}
    final_train_loss: float = math.nan
    final_test_acc: float = math.nan
    train_loss_by_seed: list = field(default_factory=list)   # per seed, the train loss of each epoch
    diverged_steps: list = field(default_factory=list)       # first non-finite step of each diverged seed
    final: dict = field(default_factory=dict)                # last-epoch metrics: name -> array over seeds
    wall_s: list = field(default_factory=list)               # per finished seed, its stored wall seconds
    train_s: list = field(default_factory=list)              # per finished seed, its training-only seconds (None: unrecorded)
    epochs_by_seed: list = field(default_factory=list)       # per finished seed, its epoch records
    peers: list = field(default_factory=list, repr=False)    # every level of the study (rules that pair levels)
    test_r2_by_seed: list = field(default_factory=list)      # regression: per seed, the test R² of each epoch
    envs: list = field(default_factory=list)                 # per seed (diverged ones too), its stored environment

    @property
    def label(self) -> str:
        return level_label(self.level)

    def has(self, probe: str, name: str) -> bool:
        return (probe, name) in self.series

    def names(self, probe: str, pattern: str) -> dict[str, dict]:
        """The recorded quantities of ``probe`` that fit ``pattern``: name -> its fields."""
        return {n: f for p, n in self.series if p == probe and (f := match(pattern, n)) is not None}

    def steps(self, probe: str, name: str) -> list[int]:
        return sorted(self.series.get((probe, name), {}))

    def at(self, probe: str, name: str, step: int) -> np.ndarray:
        return self.series[(probe, name)][step]

    def mean_at(self, probe: str, name: str, step: int) -> float:
        return float(np.mean(self.at(probe, name, step)))

    def last_step(self, probe: str, name: str) -> int:
        return self.steps(probe, name)[-1]

    def per_seed_median(self, probe: str, name: str, steps: list[int] | None = None) -> float:
        """Median over steps for each seed, then the mean over seeds."""
        steps = steps if steps is not None else self.steps(probe, name)
        if not steps:
            return math.nan
        arr = np.stack([self.at(probe, name, s) for s in steps])      # (steps, seeds)
        return float(np.mean(np.median(arr, axis=0)))


FINAL_METRICS = ("train_loss", "val_loss", "test_loss", "test_r2", "test_corr", "val_r2", "test_acc", "val_acc")


def stored_spec(spec: dict) -> TrialSpec:
    """The typed spec of a stored trial. The store keeps specs as JSON, where tuples (a
    feature range) became lists; validating them as JSON text lets strict mode take a
    JSON array for a tuple, as it does for a spec file."""
    return TrialSpec.model_validate_json(json.dumps(spec))


def view_of(trials: list[TrialRecord], level: dict) -> LevelView:
    """A level's view over its finished trials; diverged ones are counted, not averaged in."""
    v = LevelView(level=level, spec=stored_spec(trials[0].trial["spec"]), n_seeds=len(trials))
    v.diverged_steps = [r.trial["diverged_step"] for r in trials if r.status == "diverged"]
    v.envs = [r.trial.get("env") or {} for r in trials]
    trials = [r for r in trials if r.status != "diverged"]
    raw: dict = {}
    for k, r in enumerate(trials):
        for step, probe, name, value in r.probes:
            raw.setdefault((probe, name), {}).setdefault(step, {})[k] = np.nan if value is None else value
    for k, by_step in raw.items():
        v.series[k] = {s: np.array([d.get(j, np.nan) for j in range(len(trials))]) for s, d in by_step.items()}
    v.train_loss_by_seed = [[e["train_loss"] for e in r.epochs] for r in trials if r.done]
    v.wall_s = [r.trial.get("wall_s") for r in trials if r.done]
    v.train_s = [r.trial.get("train_s") for r in trials if r.done]
    v.epochs_by_seed = [r.epochs for r in trials if r.done]
    v.test_r2_by_seed = [[e.get("test_r2", math.nan) for e in r.epochs] for r in trials if r.done]
    finals = [r.epochs[-1] for r in trials if r.done]
    for name in FINAL_METRICS:
        vals = np.array([e.get(name, np.nan) for e in finals], dtype=float)
        if len(vals) and np.isfinite(vals).any():
            v.final[name] = vals
    for name in {k for e in finals for k in e if k.startswith(("test_", "val_")) and not k.startswith("test_show.")}:
        if name not in v.final:   # a registered loss's own metrics (test_ade, val_min_fde_20, test_branch_abs_error, …)
            vals = np.array([e.get(name, np.nan) for e in finals], dtype=float)
            if np.isfinite(vals).any():
                v.final[name] = vals
    if finals:
        v.final_train_loss = float(np.mean([e["train_loss"] for e in finals]))
        v.final_test_acc = float(np.mean([e["test_acc"] for e in finals]))
    return v


def level_views(levels: list[LevelRecord]) -> list[LevelView]:
    """One view per level already read (the HTML report reads a study once)."""
    return [view_of(lv.trials, lv.level) for lv in levels]


def study_views(store: Store, study: str) -> list[LevelView]:
    """One view per sweep level of the newest stored study of that name."""
    return level_views(read_levels(store, study))
