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

from .._lazy import lazy_exports

_EXPORTS = {"BRANCHES": "..data._trajectories", "JUNCTION_TYPES": "..data._trajectories",
            "TrajectoryMap": "..data._trajectories", "empirical_branch_frequencies": "..data._trajectories",
            "load_trajectory_data": "..data._trajectories", "load_trajectory_file": "..data._trajectories",
            "make_trajectories": "..data._trajectories", "TRAJECTORY_LOSSES": "_check", "check_spec": "_check",
            "CvaeHead": "_heads", "GridHead": "_heads", "MixtureHead": "_heads", "PointHead": "_heads",
            "Cvae": "_net", "Seq2Seq": "_net"}
__all__ = ["BRANCHES", "TRAJECTORY_LOSSES", "check_spec", "Cvae", "CvaeHead", "GridHead", "JUNCTION_TYPES", "MixtureHead", "PointHead", "Seq2Seq",
           "TrajectoryMap", "empirical_branch_frequencies", "load_trajectory_data", "load_trajectory_file",
           "make_trajectories"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
