"""Training one work unit of a cross-validated study, as executors call it (picklable):
networks on the engine's loop, with early stopping and the scored rows' probabilities as
hook actions; a seed ensemble as its members' group; a scikit-learn estimator (not a
network: no steps, nothing to checkpoint) as a plain fit. Each result is the stored form:
the scored rows' accuracy and log loss on the last epoch, under val_* (a fold) or test_*
(the final fit on the test rows)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._spec._trials import Trial
from ..engine import EarlyStopping, Hook, TrialResult, plan_groups, train_group
from ._cv_specs import resolved
from ._estimators import accuracy, fit_estimator, log_loss

NETWORKS = ("network", "ensemble")


class ScoredProbabilities(Hook):
    """At the group's end (best states already put back), each model's class probabilities on
    the scored rows, as its result field ``probs``: selection and ensembles need no refit."""

    def on_group_end(self, view) -> None:
        probs = view.probabilities("val")
        for m in range(view.M):
            view.put(m, "probs", probs[m])


@dataclass(frozen=True)
class CVTrain:
    """``train(group, data_dir, device, factories, start, checkpoint, expect_path)`` for the
    units of a cross-validated study; ``seeds``: the study's, whose consecutive runs of
    ``cv.ensemble`` make an ensemble trial's members."""

    seeds: tuple

    def __call__(self, group, data_dir=None, device=None, factories=(), start=None, checkpoint=None,
                 expect_path=None) -> list[TrialResult]:
        from ..data import trial_split

        s = group[0].spec
        scored = "test" if s.cv.fold == -1 else "val"
        if s.cv.estimator not in NETWORKS:
            return [_stored(t, fit_estimator(t, data_dir), scored) for t in group]
        if s.cv.estimator == "network":
            fits = _networks(group, data_dir, device, factories, start, checkpoint, expect_path)
            for t, x in zip(group, fits):
                _remember(t.spec, t.seed, x)
            return [_stored(t, x, scored) for t, x in zip(group, fits)]
        # an ensemble: every seed of the study trains (the groups the network arm's seeds make,
        # so its members give the network arm's numbers), each ensemble averages its members
        d = s.model_dump()
        d["cv"]["estimator"] = "network"
        member = resolved(d)
        fits = [_FITS.get(_member_key(member, seed)) for seed in self.seeds]
        if any(x is None for x in fits):   # not all trained in this process by the network arm: train them
            members = [Trial(study=t.study, level=t.level, seed=seed, spec=member) for t in group[:1]
                       for seed in self.seeds]
            groups = plan_groups(members, 64, data_dir, device)
            one = len(groups) == 1   # a checkpoint is one group's state
            fits = [x for g in groups for x in _networks(g, data_dir, device, factories, start if one else None,
                                                         checkpoint if one else None, expect_path)]
        y = trial_split(member, data_dir)[1].y_val
        size = s.cv.ensemble
        out = []
        for t in group:
            probs = np.mean([m["probs"] for m in fits[t.seed * size:(t.seed + 1) * size]], axis=0)
            out.append(_stored(t, dict(probs=probs, acc=accuracy(probs, y), loss=log_loss(probs, y), epochs=[dict(epoch=1)],
                                       wall_s=0.0, path=fits[0]["path"]), scored))
        return out


# The network arm's fits in this process, by member key and seed: an ensemble arm's members
# are the network arm's seeds on the same fold (same spec but the estimator), trained in the
# same groups, so their probabilities are the same numbers; the ensemble reads them here instead
# of training its members again (the network arm's units come first in a stage). A process
# that did not train them (another worker, a resumed study) trains them as before.
_FITS: dict = {}
_FITS_MAX = 4096


def _member_key(spec, seed: int) -> tuple:
    d = spec.model_dump(exclude={"effective"})
    d["cv"] = {k: v for k, v in d["cv"].items() if k not in ("estimator", "ensemble")}
    return repr(sorted(d.items())), seed


def _remember(spec, seed: int, fit: dict) -> None:
    if len(_FITS) >= _FITS_MAX:
        _FITS.pop(next(iter(_FITS)))
    _FITS[_member_key(spec, seed)] = fit


def _networks(group, data_dir, device, factories, start, checkpoint, expect_path) -> list[dict]:
    """The group on the engine's loop; per model its scored rows' probabilities, accuracy and
    log loss, and its epochs (train metrics; the scored rows' curves on outer folds only)."""
    from ..data import trial_split

    s = group[0].spec
    hooks = [h for h in (f(group) for f in factories) if h is not None]
    if s.cv.early_stopping:   # on the monitor rows (the engine's "test" part of a fold's split)
        hooks.insert(0, EarlyStopping("test_loss", s.cv.patience))
    results = train_group(group, data_dir, device, hooks=[*hooks, ScoredProbabilities()], start=start,
                          checkpoint=checkpoint, expect_path=expect_path)
    curves = s.cv.inner is None and s.cv.fold != -1
    keep = ("epoch", "train_loss", "train_acc", *(("val_loss", "val_acc") if curves else ()))
    y = trial_split(s, data_dir)[1].y_val
    out = []
    for r in results:
        probs = r.fields["probs"]
        out.append(dict(probs=probs, acc=accuracy(probs, y), loss=log_loss(probs, y), wall_s=r.wall_s,
                        epochs=[{k: e[k] for k in keep} for e in r.epochs], path=r.path, train_s=r.train_s,
                        probes=r.probes))
    return out


def _stored(trial, r: dict, scored: str) -> TrialResult:
    """A stored result: the scored rows' metrics on the last epoch under val_* or test_*; a
    network whose training loss went non-finite diverged (at that epoch)."""
    epochs = [dict(e) for e in r["epochs"]] or [dict(epoch=1)]
    for e in epochs:
        for k in ("val_loss", "val_acc", "test_loss", "test_acc"):
            e.setdefault(k, math.nan)
    epochs[-1][f"{scored}_acc"], epochs[-1][f"{scored}_loss"] = r["acc"], r["loss"]
    bad = [e["epoch"] for e in epochs if not math.isfinite(e.get("train_loss", 0.0)) and
           trial.spec.cv.estimator == "network"]
    return TrialResult(trial, "diverged" if bad else "done", bad[0] if bad else None, epochs, r["wall_s"],
                       probes=r.get("probes", []), train_s=r.get("train_s"), path=r.get("path"))
