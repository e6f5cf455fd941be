"""Trajectory metrics as plain functions of arrays (numpy, float64), each checked by hand in
the tests. Shapes: M models, n samples, T future steps, K samples per input, G cells per
axis of the grid over the coordinate box [lo, hi]².

* ``ade`` / ``fde``: mean over steps / at the last step of the Euclidean distance of the
  best single prediction to the truth; ``min_ade_k`` / ``min_fde_k``: the same for the best
  of K sampled futures (the field's minADE_K, minFDE_K). The grid softmax predicts one
  heatmap per step and no joint over steps, so its K "paths" draw every step's cell
  independently: a path may follow the left branch at one step and the right one at the
  next. Its minFDE_K reads only the last step, whose marginal is exactly what the model
  predicts, so it compares with the other models' — up to the cell quantisation: a sample is
  a cell centre, and a true position uniform in a cell of side s lies on average 0.383·s
  from the centre (1.9 units for 5-unit cells), a floor no grid sample beats. Its minADE_K
  does not compare: the best of K independently mixed paths is not the best of K coherent
  futures (no principled joint can be built from per-step marginals alone: the model never
  learned which step-3 cell goes with which step-6 cell), so read the MDN's and the CVAE's
  minADE_K against each other and the grid's only as its own;
* ``grid_nll``: −log of the predicted density of the true position, per step, on the grid
  (cell probability / cell area, so grids of different sizes compare), averaged over steps
  and samples;
* ``modes``: how many distinct futures the K samples hold: their final positions grouped by
  single linkage at a radius of a quarter of the distance an agent travels over the horizon
  (the observed median step × T; two ends closer than that head the same way), averaged
  over inputs. Needs no ground truth: 1 for a model that averages the modes;
* ``spread_skill``: calibration of the predicted spread: the RMS distance of the true final
  position to the samples' mean over the RMS spread of the samples, with the ensemble
  factor √((K+1)/K). 1 when the truth is one more draw from the predicted distribution;
  above 1 overconfident (too narrow), below 1 too wide;
* branch masses: the predicted probability of each branch (left, straight, right) of the
  sample's junction, from the final position; ``branch_abs_error``: the largest absolute
  error of the mean predicted mass against the generator's probabilities, over junction
  types and branches.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

EPS_UNIFORM = 0.01   # every grid density is mixed with 1 % of the uniform one: a point or sampled
                     # prediction that misses a cell costs a finite −log(0.01/G²), the same for all models


def _dist(a, b):
    return np.sqrt(((a - b) ** 2).sum(-1))


def ade(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """pred (..., T, 2), y (..., T, 2) → mean displacement over steps (...)."""
    return _dist(pred, y).mean(-1)


def fde(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _dist(pred[..., -1, :], y[..., -1, :])


def min_ade(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """samples (..., K, T, 2), y (..., T, 2) → the best sample's ADE (...)."""
    return ade(samples, y[..., None, :, :]).min(-1)


def min_fde(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    return fde(samples, y[..., None, :, :]).min(-1)


def mode_radius(X: np.ndarray, n_future: int) -> float:
    """A quarter of the distance travelled over the horizon: the median observed step of
    inputs X (n, n_obs, 2) × ``n_future`` / 4 (see ``modes`` above)."""
    steps = np.linalg.norm(np.diff(X, axis=1), axis=-1)
    return float(np.median(steps)) * n_future / 4


def distinct_modes(finals: np.ndarray, radius: float) -> np.ndarray:
    """finals (..., K, 2) → the number of groups of samples linked by chains of distances
    ≤ ``radius`` (single linkage, exact: the transitive closure by repeated squaring)."""
    K = finals.shape[-2]
    A = (_dist(finals[..., :, None, :], finals[..., None, :, :]) <= radius).astype(np.float64)
    for _ in range(max(1, math.ceil(math.log2(max(K, 2))))):
        A = (A @ A > 0).astype(np.float64)
    first = A.argmax(-1)                 # each sample's group, named by its lowest member
    return (first == np.arange(K)).sum(-1).astype(np.float64)


def spread_terms(finals: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """finals (..., K, 2), truth (..., 2) → per input the squared distance of the truth to
    the samples' mean and the samples' spread Σ|s − mean|² / (K − 1)."""
    K = finals.shape[-2]
    d = finals - finals[..., :1, :]       # about the first sample: K equal samples have a spread of exactly 0
    dm = d.mean(-2)
    err2 = ((truth - finals[..., 0, :] - dm) ** 2).sum(-1)
    spread2 = ((d - dm[..., None, :]) ** 2).sum((-1, -2)) / max(K - 1, 1)
    return err2, spread2


def spread_skill(err2: np.ndarray, spread2: np.ndarray, K: int) -> np.ndarray:
    """Mean over the last axis: √(mean err²) / √((K+1)/K · mean spread²); nan for no spread."""
    s = spread2.mean(-1) * (K + 1) / K
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, np.sqrt(err2.mean(-1) / s), np.nan)


# ----------------------------------------------------------------------------- the grid

def cell_index(p: np.ndarray, lo: float, hi: float, G: int) -> np.ndarray:
    """Flat cell index (row = y cell, column = x cell) of positions p (..., 2); positions
    outside the box count in its edge cells."""
    ij = np.clip(np.floor((p - lo) / (hi - lo) * G), 0, G - 1).astype(np.int64)
    return ij[..., 1] * G + ij[..., 0]


def cell_centres(lo: float, hi: float, G: int) -> np.ndarray:
    """(G², 2) centres in flat cell order."""
    c = lo + (np.arange(G) + 0.5) * (hi - lo) / G
    xx, yy = np.meshgrid(c, c)
    return np.stack([xx.ravel(), yy.ravel()], -1)


def gaussian_cell_probs(mu: np.ndarray, sigma: np.ndarray, lo: float, hi: float, G: int) -> np.ndarray:
    """Exact cell masses of axis-aligned Gaussians N(mu, diag sigma²): mu, sigma (..., 2) →
    (..., G²), the product of the two axes' CDF differences over the cell edges."""
    edges = np.linspace(lo, hi, G + 1)
    cdf = ndtr((edges - mu[..., None]) / sigma[..., None])                 # (..., 2, G + 1)
    d = np.diff(cdf, axis=-1)                                             # (..., 2, G)
    return (d[..., 1, :, None] * d[..., 0, None, :]).reshape(*mu.shape[:-1], G * G)


def histogram_cell_probs(samples: np.ndarray, lo: float, hi: float, G: int) -> np.ndarray:
    """samples (..., S, 2) → the share of samples in each cell (..., G²)."""
    idx = cell_index(samples, lo, hi, G)
    lead = idx.shape[:-1]
    flat = idx.reshape(-1, idx.shape[-1])
    out = np.zeros((flat.shape[0], G * G))
    np.add.at(out, (np.arange(flat.shape[0])[:, None], flat), 1.0)
    return (out / idx.shape[-1]).reshape(*lead, G * G)


def normalise(probs: np.ndarray) -> np.ndarray:
    """Cell masses → a distribution on the grid, mixed with EPS_UNIFORM of the uniform one."""
    s = probs.sum(-1, keepdims=True)
    p = np.where(s > 0, probs / np.where(s > 0, s, 1), 1.0 / probs.shape[-1])
    return (1 - EPS_UNIFORM) * p + EPS_UNIFORM / probs.shape[-1]


def grid_nll(probs: np.ndarray, cells: np.ndarray, lo: float, hi: float, G: int) -> np.ndarray:
    """−log density of the true cell: probs (..., G²) a distribution, cells (...) → (...)."""
    area = ((hi - lo) / G) ** 2
    p = np.take_along_axis(probs, cells[..., None], -1)[..., 0]
    return -np.log(p / area)


# ----------------------------------------------------------------------------- branches

def sector(p: np.ndarray, centre: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Branch of positions p (..., n, 2) seen from each sample's junction (centre, heading
    (n, 2)): 0 left, 1 straight, 2 right (the 90° sector around each direction), 3 back."""
    d = p - centre
    fwd = (d * heading).sum(-1)
    lat = d[..., 1] * heading[:, 0] - d[..., 0] * heading[:, 1]            # left of the heading: > 0
    ang = np.arctan2(lat, fwd)
    q = math.pi / 4
    return np.where(np.abs(ang) <= q, 1, np.where((ang > q) & (ang <= 3 * q), 0,
                                                  np.where((ang < -q) & (ang >= -3 * q), 2, 3)))


def branch_mass_from_cells(probs: np.ndarray, centre: np.ndarray, heading: np.ndarray, lo: float, hi: float,
                           G: int) -> np.ndarray:
    """probs (M, n, G²) of the final position → mass per branch (M, n, 3)."""
    cc = cell_centres(lo, hi, G)                                           # (G², 2)
    sec = sector(cc[:, None, :], centre, heading).T                        # (n, G²)
    return np.stack([(probs * (sec == b)).sum(-1) for b in range(3)], -1)


def branch_mass_from_points(points: np.ndarray, centre: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """points (M, n, S, 2) final positions (S samples per input, 1 for a point prediction)
    → share per branch (M, n, 3)."""
    sec = sector(np.moveaxis(points, 2, 0), centre, heading)               # (S, M, n)
    return np.stack([(sec == b).mean(0) for b in range(3)], -1)


def branch_recovery(mass: np.ndarray, types: np.ndarray, true_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mass (M, n, 3) per sample, types (n,) junction type index, true_probs (J, 3) →
    the mean predicted mass per type (M, J, 3) (nan for a type without samples) and the
    largest absolute error over types and branches (M,)."""
    J = true_probs.shape[0]
    per = np.full((mass.shape[0], J, 3), np.nan)
    for j in range(J):
        sel = types == j
        if sel.any():
            per[:, j] = mass[:, sel].mean(1)
    err = np.nanmax(np.abs(per - true_probs[None]), axis=(1, 2))
    return per, err


def distance_to_branches(p: np.ndarray, ends: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Distance of final positions p (..., n, 2) to the nearest available branch's true final
    position ``ends`` (n, 3, 2) (where an agent taking that branch ends, noise-free),
    ``available`` (n, 3) booleans → (...). A prediction between the branches is far from all."""
    d = np.sqrt(((p[..., None, :] - ends) ** 2).sum(-1))                   # (..., n, 3)
    return np.where(available, d, np.inf).min(-1)


def between_branches(p: np.ndarray, ends: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Whether final positions p (..., n, 2) lie between the branches (..., n): farther from
    every available branch end than a quarter of the gap between the two nearest ends. A
    point within a quarter gap of an end is unambiguously on that branch (a cell-sized
    error included); farther from all of them it is in the region between (their mean)."""
    e = np.where(available[..., None], ends, np.nan)
    pair = np.sqrt(((e[:, :, None] - e[:, None, :]) ** 2).sum(-1))             # (n, 3, 3)
    pair[:, np.arange(3), np.arange(3)] = np.nan
    gap = np.nanmin(pair.reshape(len(ends), -1), axis=1)                     # (n,)
    return distance_to_branches(p, ends, available) > gap / 4
