"""The ``[trajectory]`` section: the trajectory generator (``data.dataset = "trajectories"``)
and the heads of ``model.kind = "trajectory"`` (see :mod:`scalelab.trajectories`). Optional:
a spec without it computes (and is keyed) exactly as before."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

JUNCTIONS = ("cross", "tee", "left-straight")


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v}")
    return v


# as _sections' Num and Range (kept apart: _sections imports this module)
Num = Annotated[float, AfterValidator(_finite)]
Range = Annotated[tuple[Num, Num], BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)]


class TrajectorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # the generator (data.n_samples sequences, data.split_seed its seed) or a user's .npz (data.path)
    n_obs: int = Field(10, ge=2)               # observed positions per sequence
    n_future: int = Field(6, ge=1)             # positions to predict
    probs: list[Num] = [0.5, 0.3, 0.2]         # left, straight, right at a junction
    junction_types: list[Literal[JUNCTIONS]] = list(JUNCTIONS)
    speed: Range = (2.0, 3.0)                  # per-sample speed, coordinate units per step
    noise: Num = Field(0.3, ge=0)              # position noise std
    coord_range: Range = (0.0, 100.0)          # the map's box (also the grid's)
    # a user's file (data.path): the box is the data's own range, printed (false: coord_range,
    # and a position outside it is an error). Left out of the key at its default.
    infer_range: bool = True
    n_test: int = Field(4000, ge=1)            # generated test sequences
    # the model: an LSTM encoder–decoder trunk and the head that loss.name names
    units: int = Field(64, ge=1)
    grid_size: int = Field(20, ge=2)           # cells per axis (grid_softmax head; grid metrics of every model)
    components: int = Field(5, ge=1)           # mdn_nll: Gaussian components over the whole future path
    latent: int = Field(4, ge=1)               # cvae_elbo: size of z
    k: int = Field(20, ge=1)                   # samples for minADE_k / minFDE_k
    density_samples: int = Field(200, ge=1)    # cvae_elbo: samples behind its grid density and branch masses

    @field_validator("probs")
    @classmethod
    def _three(cls, v):
        if len(v) != 3 or min(v) < 0 or sum(v) <= 0:
            raise ValueError("give three probabilities (left, straight, right), not negative, e.g. [0.5, 0.3, 0.2]")
        return v
