"""Multimodal trajectories (seed 003, "predict all probable trajectories in a grid"):
agents drive along the roads of a fixed map and, at a junction, turn left, go straight or
turn right with set probabilities. Ten observed positions end just before a junction, so
the observed path cannot tell which branch follows: the future is multimodal by
construction, and the generator knows each sample's true branch and the true distribution
of futures (one path per branch, each with its probability).

The map: junction centres on the lattice {35, 50, 65}² of the box [0, 100]², each entered
from the four directions; each row of junctions (y = 35, 50, 65) has one type:

* ``cross``: left, straight and right (probabilities as given, default 0.5 / 0.3 / 0.2);
* ``tee``: left and right only; ``left-straight``: left and straight only — the given
  probabilities restricted to those branches and renormalised.

An agent keeps its speed v ~ U(speed) (one per sample) with a small step-to-step jitter;
its last observed position lies d0 ~ U(0, v) before the centre; after the centre it
follows its branch (a sharp turn at the centre). Every position gets Gaussian noise.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from ._dataset import DataError, Dataset

BRANCHES = ("left", "straight", "right")
JUNCTION_TYPES = {"cross": (True, True, True), "tee": (True, False, True), "left-straight": (True, True, False)}
CENTRES = (35.0, 50.0, 65.0)
HEADINGS = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))   # east, north, west, south


def _left_of(u):
    return np.stack([-u[..., 1], u[..., 0]], axis=-1)


def branch_directions(heading: np.ndarray) -> np.ndarray:
    """(n, 3, 2) unit directions of left, straight, right for headings (n, 2)."""
    left = _left_of(heading)
    return np.stack([left, heading, -left], axis=1)


@dataclass(frozen=True)
class TrajectoryMap:
    """The map and the branch probabilities: what the generator draws from and what the
    metrics compare predictions with."""

    probs: tuple[float, float, float] = (0.5, 0.3, 0.2)
    junction_types: tuple[str, ...] = tuple(JUNCTION_TYPES)
    coord_range: tuple[float, float] = (0.0, 100.0)
    approaches: list = field(default_factory=list, compare=False)

    def __post_init__(self):
        if not self.approaches:
            types = list(self.junction_types)
            aps = []
            for i, cx in enumerate(CENTRES):
                for j, cy in enumerate(CENTRES):
                    for h, u in enumerate(HEADINGS):
                        aps.append(((cx, cy), u, types[j % len(types)]))
            object.__setattr__(self, "approaches", aps)

    def type_probs(self, jtype: str) -> np.ndarray:
        """The true branch probabilities (left, straight, right) at a junction type."""
        p = np.asarray(self.probs, dtype=np.float64) * np.asarray(JUNCTION_TYPES[jtype], dtype=np.float64)
        if p.sum() <= 0:
            raise DataError(f"trajectory.probs {self.probs} give no branch of a {jtype!r} junction a probability; "
                            f"give its branches positive probabilities")
        return p / p.sum()

    def locate(self, X: np.ndarray) -> dict:
        """For observed paths X (n, steps, 2) in original units: each path's junction centre
        (n, 2), heading (n, 2), type index into :attr:`junction_types` (n,) and its true
        branch probabilities (n, 3). The heading is the dominant axis of the observed
        displacement; the centre is the junction of that approach nearest to the point one
        step ahead of the last observed position."""
        X = np.asarray(X, dtype=np.float64)
        d = X[:, -1] - X[:, 0]
        steps = X.shape[1] - 1
        ax = np.abs(d[:, 0]) >= np.abs(d[:, 1])
        heading = np.where(ax[:, None], np.stack([np.sign(d[:, 0]), 0 * d[:, 0]], 1),
                           np.stack([0 * d[:, 1], np.sign(d[:, 1])], 1))
        v = np.linalg.norm(d, axis=1) / max(steps, 1)
        ahead = X[:, -1] + heading * (0.5 * v)[:, None]
        centres = np.array([a[0] for a in self.approaches])
        headings = np.array([a[1] for a in self.approaches])
        types = list(self.junction_types)
        tix = np.array([types.index(a[2]) for a in self.approaches])
        same = (headings[None] * heading[:, None]).sum(-1) > 0.5                    # (n, A)
        dist = np.linalg.norm(centres[None] - ahead[:, None], axis=-1) + 1e9 * (~same)
        a = dist.argmin(1)
        probs = np.stack([self.type_probs(t) for t in types])[tix[a]]
        return dict(centre=centres[a], heading=heading, type=tix[a], probs=probs)


def make_trajectories(n_train: int = 40_000, n_test: int = 4_000, seed: int = 0, n_obs: int = 10,
                      n_future: int = 6, probs=(0.5, 0.3, 0.2), speed=(2.0, 3.0), speed_jitter: float = 0.05,
                      noise: float = 0.3, junction_types=tuple(JUNCTION_TYPES),
                      coord_range=(0.0, 100.0)) -> Dataset:
    """Observed paths X (n, n_obs·2) and futures Y (n, n_future·2), time-major (x0, y0, x1,
    y1, …) as the engine's flat layers expect; ``meta`` holds the map and, per split, each
    sample's junction, true branch, speed and the true future of every branch."""
    if any(t not in JUNCTION_TYPES for t in junction_types) or not junction_types:
        raise DataError(f"trajectory.junction_types {list(junction_types)}: choose from {', '.join(JUNCTION_TYPES)}")
    if len(probs) != 3 or min(probs) < 0 or sum(probs) <= 0:
        raise DataError(f"trajectory.probs = {list(probs)}: give three probabilities (left, straight, right), "
                        f"not negative, e.g. [0.5, 0.3, 0.2]")
    tmap = TrajectoryMap(tuple(float(p) / sum(probs) for p in probs), tuple(junction_types), tuple(coord_range))
    for t in tmap.junction_types:
        tmap.type_probs(t)
    rng = np.random.default_rng([seed, 19])
    aps = tmap.approaches

    def draw(n):
        a = rng.integers(0, len(aps), size=n)
        centre = np.array([aps[i][0] for i in a])
        heading = np.array([aps[i][1] for i in a])
        p = np.stack([tmap.type_probs(aps[i][2]) for i in a])
        branch = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(1).clip(0, 2)
        v = rng.uniform(*speed, size=n)
        d0 = rng.uniform(0, 1, size=n) * v
        steps = v[:, None] * (1 + speed_jitter * rng.normal(size=(n, n_obs + n_future - 1)))
        # arc length of every position relative to the centre: the last observed one at -d0
        s = np.concatenate([-np.cumsum(steps[:, :n_obs - 1][:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1)),
                            np.cumsum(steps[:, n_obs - 1:], axis=1)], axis=1) - d0[:, None]
        dirs = branch_directions(heading)                                    # (n, 3, 2)
        out_dir = dirs[np.arange(n), branch]
        path = centre[:, None] + np.where(s[..., None] < 0, s[..., None] * heading[:, None],
                                          s[..., None] * out_dir[:, None])
        path = path + noise * rng.normal(size=path.shape)
        # the true future of each branch (noise-free, at the sample's own arc lengths)
        sf = s[:, n_obs:]
        fut = centre[:, None, None] + np.where(sf[:, None, :, None] < 0, sf[:, None, :, None] * heading[:, None, None],
                                               sf[:, None, :, None] * dirs[:, :, None])
        tix = np.array([tmap.junction_types.index(aps[i][2]) for i in a])
        info = dict(centre=centre, heading=heading, type=tix, branch=branch, probs=p, speed=v, branch_futures=fut)
        return path[:, :n_obs].reshape(n, -1), path[:, n_obs:].reshape(n, -1), info

    Xtr, Ytr, itr = draw(n_train)
    Xte, Yte, ite = draw(n_test)
    meta = dict(trajectory=dict(map=tmap, n_obs=n_obs, n_future=n_future, train=itr, test=ite, generated=True))
    return Dataset("trajectories", Xtr, Ytr, Xte, Yte, "regression", 0, meta=meta)


def load_trajectory_file(path: str, coord_range=(0.0, 100.0), n_obs: int = 10, n_future: int = 6,
                         test_fraction: float = 0.2, seed: int = 0, infer_range: bool = False,
                         say=None) -> Dataset:
    """A user's ``.npz`` with ``X`` (n, n_obs, 2) observed and ``Y`` (n, n_future, 2) future
    positions, and optionally ``X_test`` / ``Y_test``, checked (shapes, finite values,
    coordinates) with one actionable line per problem.

    The test set is the file's ``X_test`` / ``Y_test`` when it has them (all of X, Y then
    train), else the last ``test_fraction`` after a seeded shuffle. ``infer_range``: the
    grid's box is the data's own range, widened by 5 % of it on each side (one box for both
    axes: the grid has square cells); else ``coord_range``, and a position outside it is an
    error. ``say`` (default: print to stderr once per file and outcome) receives one line
    that says which test set and which box were used."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; give data.path an .npz with arrays X (n, {n_obs}, 2) and "
                        f"Y (n, {n_future}, 2)") from None
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable .npz ({e}); save it with numpy.savez(path, X=X, Y=Y)") from None
    has_test = [k for k in ("X_test", "Y_test") if k in arrays]
    if len(has_test) == 1:
        other = ({"X_test", "Y_test"} - set(has_test)).pop()
        raise DataError(f"{path}: it has {has_test[0]} but no {other}; give both (the test set) or neither (a seeded "
                        f"{test_fraction:.0%} of X, Y is held out)")
    for k, steps in (("X", n_obs), ("Y", n_future), *((("X_test", n_obs), ("Y_test", n_future)) if has_test else ())):
        if k not in arrays:
            raise DataError(f"{path}: no array {k!r} (it has {', '.join(arrays) or 'none'}); save X (n, {n_obs}, 2) "
                            f"and Y (n, {n_future}, 2) with numpy.savez(path, X=X, Y=Y)")
        a = arrays[k]
        if a.ndim != 3 or a.shape[1:] != (steps, 2):
            raise DataError(f"{path}: {k} has shape {a.shape}, expected (n, {steps}, 2) (n sequences of {steps} "
                            f"2-D positions); set trajectory.{'n_obs' if k.startswith('X') else 'n_future'} to match "
                            f"or reshape it")
        if not np.issubdtype(a.dtype, np.number):
            raise DataError(f"{path}: {k} has dtype {a.dtype}; positions must be numbers")
    sets = {k: arrays[k].astype(np.float64) for k in ("X", "Y", *(("X_test", "Y_test") if has_test else ()))}
    for a, b in (("X", "Y"), ("X_test", "Y_test")):
        if a in sets and len(sets[a]) != len(sets[b]):
            raise DataError(f"{path}: {a} has {len(sets[a])} sequences but {b} has {len(sets[b])}; give one future "
                            f"per observed path")
    if len(sets["X"]) < (1 if has_test else 2):
        raise DataError(f"{path}: {len(sets['X'])} sequence(s); at least 2 are needed (training and test)")
    for k, a in sets.items():
        bad = np.argwhere(~np.isfinite(a))
        if len(bad):
            i, t, c = bad[0]
            raise DataError(f"{path}: {k}[{i}, {t}, {c}] is {a[i, t, c]}; {len(bad)} value(s) are NaN or infinite — "
                            f"drop or fill those sequences")
    span_lo = min(float(a.min()) for a in sets.values())
    span_hi = max(float(a.max()) for a in sets.values())
    if infer_range:
        pad = 0.05 * max(span_hi - span_lo, 1e-9)
        lo, hi = span_lo - pad, span_hi + pad
    else:
        lo, hi = coord_range
        for k, a in sets.items():
            out = np.argwhere((a < lo) | (a > hi))
            if len(out):
                i, t, c = out[0]
                raise DataError(f"{path}: {k}[{i}, {t}, {c}] = {a[i, t, c]:g} is outside the coordinate range "
                                f"[{lo:g}, {hi:g}] ({len(out)} value(s) are); set trajectory.coord_range to the range "
                                f"of your map (or trajectory.infer_range = true)")
    X, Y = sets["X"], sets["Y"]
    if has_test:
        tr, Xte, Yte = np.arange(len(X)), sets["X_test"], sets["Y_test"]
        test_said = f"test set: the file's X_test/Y_test ({len(Xte)} sequences), training on all {len(X)} of X/Y"
    else:
        perm = np.random.default_rng([seed, 19]).permutation(len(X))
        n_test = max(1, int(round(test_fraction * len(X))))
        te, tr = perm[:n_test], perm[n_test:]
        Xte, Yte = X[te], Y[te]
        test_said = (f"test set: a seeded {test_fraction:.0%} of X/Y ({n_test} sequences; add X_test and Y_test to "
                     f"the file to choose it)")
    box = (f"grid box [{lo:.4g}, {hi:.4g}]² inferred from the data (set trajectory.infer_range = false and "
           f"trajectory.coord_range to fix it)" if infer_range else f"grid box [{lo:g}, {hi:g}]² (trajectory.coord_range)")
    (say or _say_once)(f"{path}: {test_said}; positions span [{span_lo:.4g}, {span_hi:.4g}]; {box}")
    flat = lambda a: a.reshape(len(a), -1)
    meta = dict(trajectory=dict(map=TrajectoryMap(coord_range=(lo, hi)), n_obs=n_obs, n_future=n_future,
                                generated=False, test_source="file" if has_test else "split",
                                range_source="data" if infer_range else "coord_range"))
    return Dataset("trajectories", flat(X[tr]), flat(Y[tr]), flat(Xte), flat(Yte), "regression", 0, meta=meta)


_SAID: set[str] = set()


def _say_once(line: str) -> None:
    """A data set is loaded by each check and each group: say what was used once per process."""
    if line not in _SAID:
        _SAID.add(line)
        print(f"scalelab: {line}", file=sys.stderr, flush=True)


def empirical_branch_frequencies(info: dict, n_types: int) -> np.ndarray:
    """(types, 3) share of samples that took each branch, per junction type (nan where none)."""
    out = np.full((n_types, 3), math.nan)
    for t in range(n_types):
        sel = info["type"] == t
        if sel.any():
            out[t] = np.bincount(info["branch"][sel], minlength=3) / sel.sum()
    return out


def load_trajectory_data(data, trajectory):
    """The data set of ``data.dataset = "trajectories"``: a user's .npz (``data.path``) or
    the generator (``data.n_samples`` training sequences, seeded by ``data.split_seed``)."""
    tr = trajectory
    if tr is None:
        from .._spec._trajectory import TrajectorySpec

        tr = TrajectorySpec()
    if data.path:
        return load_trajectory_file(data.path, tuple(tr.coord_range), tr.n_obs, tr.n_future, data.test_fraction,
                                    data.split_seed, infer_range=tr.infer_range)
    return make_trajectories(n_train=data.n_samples or 40_000, n_test=tr.n_test, seed=data.split_seed,
                             n_obs=tr.n_obs, n_future=tr.n_future, probs=tuple(tr.probs), speed=tuple(tr.speed),
                             noise=tr.noise, junction_types=tuple(tr.junction_types),
                             coord_range=tuple(tr.coord_range))


def load(data, data_dir, trajectory) -> Dataset:
    return load_trajectory_data(data, trajectory)
