"""Synthetic level views for the explain-rule tests: probe series written by hand."""

import numpy as np

from scalelab._spec import TrialSpec
from scalelab._explain import LevelView


def view(level, spec, series, final_loss=0.3, acc=0.85, losses=None):
    """A LevelView of ``series``: (probe, quantity) -> {step: values over seeds}; ``spec`` is
    the part of a trial spec that matters (the rest takes TrialSpec's defaults)."""
    n_seeds = len(next(iter(next(iter(series.values())).values()))) if series else 1
    v = LevelView(level=level, spec=TrialSpec.model_validate({"name": "synthetic", **spec}), n_seeds=n_seeds)
    v.series = {k: {s: np.asarray(x, dtype=float) for s, x in d.items()} for k, d in series.items()}
    v.final_train_loss, v.final_test_acc = final_loss, acc
    v.train_loss_by_seed = losses or []
    return v


SPEC = {"loss": {"clip": 1e-7, "from_logits": False}, "input": {"transform": "scale", "scale": 1 / 255}}


def good_and_bad_regression():
    """Two regression levels with batch norm under SGD: one that fits, one that predicts the mean."""
    spec = {"model": {"batchnorm": True}, "optim": {"name": "sgd", "lr": 0.1, "lr_mult": [1.0, 1.0]}, **SPEC}
    good = view({"t": "minmax"}, spec, {("hessian", "max_eigenvalue"): {0: [5.0, 6.0], 10: [4.0, 4.0]}})
    good.final = {"test_r2": np.array([0.9, 0.95]), "test_corr": np.array([0.97, 0.98]),
                  "train_loss": np.array([0.01, 0.01]), "val_loss": np.array([0.012, 0.011])}
    bad = view({"t": "none"}, spec, {("hessian", "max_eigenvalue"): {0: [30.0, 25.0], 10: [0.0, 0.0]}})
    bad.final = {"test_r2": np.array([-0.05, 0.02]), "test_corr": np.array([0.1, 0.05]),
                 "train_loss": np.array([1e-4, 2e-4]), "val_loss": np.array([3e-3, 4e-3])}
    return good, bad
