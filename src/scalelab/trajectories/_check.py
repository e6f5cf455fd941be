"""What a trajectory spec asks that does not fit together (read when a group is planned)."""

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
