"""within_reference_range without a test metric: final training losses are compared only
between levels that minimise the same loss on targets in the same units."""

import numpy as np

from explain_helpers import view
from scalelab._explain._compare import within_reference_range


def _level(name, losses):
    v = view({"loss.name": name}, {"loss": {"name": name}, "model": {"kind": "trajectory"}}, {})
    v.final = {"train_loss": np.asarray(losses, dtype=float)}
    return v


def test_training_losses_of_different_loss_functions_are_never_within_range():
    ref = _level("trajectory_mse", [40.0, 50.0])
    # a grid softmax's cross-entropy is far below the MSE's numbers: not comparable, not "within range"
    assert not within_reference_range(_level("grid_softmax", [2.0, 2.1]), ref)
    assert not within_reference_range(_level("mdn_nll", [-3.0, -2.0]), ref)
    # the same loss: compared against the reference's worst seed, on both sides
    assert within_reference_range(_level("trajectory_mse", [45.0, 49.0]), ref)
    assert not within_reference_range(_level("trajectory_mse", [60.0, 70.0]), ref)
