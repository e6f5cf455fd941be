"""Multimodal trajectory prediction (seed 003, "predict all probable trajectories in a grid"):
a generator with known branch probabilities, four models (a deterministic LSTM
encoder–decoder, a grid softmax per step, a mixture density network, a conditional VAE) as
registered losses of the engine, and the metrics that compare them.

* the data (``scalelab.data._trajectories``): the map, :func:`make_trajectories`, a user's ``.npz``;
* ``_net``: the layers (:class:`Seq2Seq`, :class:`Cvae`), written once per model;
* ``_heads``: the registered losses, each with its model and its decoding into predictions;
* ``_metrics``: ADE/FDE, minADE_K/minFDE_K, grid NLL, branch masses (plain functions);
* ``_evaluate``: held-out evaluation (loss each epoch, every metric after the last).
"""

from ..data._trajectories import (BRANCHES, JUNCTION_TYPES, TrajectoryMap, empirical_branch_frequencies,
                                  load_trajectory_data, load_trajectory_file, make_trajectories)
from ._heads import CvaeHead, GridHead, MixtureHead, PointHead
from ._net import Cvae, Seq2Seq


TRAJECTORY_LOSSES = ("trajectory_mse", "grid_softmax", "mdn_nll", "cvae_elbo")


def check_spec(spec, ds) -> None:
    """What a trajectory spec asks that does not fit together: one actionable ValueError."""
    loss, kind = spec.loss.name, spec.model.kind
    if kind == "trajectory" and loss not in TRAJECTORY_LOSSES:
        raise ValueError(f"model.kind = 'trajectory' builds the model of a trajectory loss; set loss.name to one of "
                         f"{', '.join(TRAJECTORY_LOSSES)} (got {loss!r})")
    if loss in TRAJECTORY_LOSSES and (kind != "trajectory" or ds.name != "trajectories"):
        raise ValueError(f"loss.name = {loss!r} predicts trajectories with its own model: set model.kind = "
                         f"'trajectory' and data.dataset = 'trajectories'")


__all__ = ["BRANCHES", "TRAJECTORY_LOSSES", "check_spec", "Cvae", "CvaeHead", "GridHead", "JUNCTION_TYPES", "MixtureHead", "PointHead", "Seq2Seq",
           "TrajectoryMap", "empirical_branch_frequencies", "load_trajectory_data", "load_trajectory_file",
           "make_trajectories"]
