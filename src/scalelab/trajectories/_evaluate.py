"""Held-out evaluation of a trajectory head: the loss every epoch; after the last epoch, on
the test set, every trajectory metric (see :mod:`._metrics`) and a few test samples' heatmaps
and sampled futures for the report (``show.<i>.…``). Sampling and grid densities cost more
than an epoch's evaluation, so only the final, reported models pay for them."""

from __future__ import annotations

import numpy as np
import torch

from .. import optim as _optim
from . import _metrics as mt
from ..data._trajectories import BRANCHES, JUNCTION_TYPES

CHUNK = 500           # rows per forward pass: memory for K samples and G² cells stays small
SHOWCASE = 3          # test samples drawn in the report (the first of each junction type)


@torch.no_grad()
def evaluate_head(head, X: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    g = head.g
    M, n = g.M, len(X)
    if n == 0:
        return dict(loss=np.full(M, np.nan))
    final = g.step >= g.steps_per_epoch * g.epochs
    is_test = X is g.X_test
    point_head = head.name == "trajectory_mse"
    loss_sum = torch.zeros(M, dtype=torch.float64, device=g.device)
    sq = torch.zeros(M, dtype=torch.float64, device=g.device)
    for i in range(0, n, CHUNK):
        idx = torch.arange(i, min(n, i + CHUNK), device=g.device).expand(M, -1)
        xb, yb = g.inputs(X, idx), g.targets(y, idx)
        out = g.forward(g.params, xb, targets=yb)
        loss_sum += head.per_sample(out, yb).sum(1).double()
        if point_head and final:
            sq += (head.orig_path(out) - y[i: i + idx.shape[1]].reshape(1, -1, head.T, 2)).double().pow(2).sum((1, 2, 3))
    loss = loss_sum / n
    if g.l2 is not None:
        loss = loss + _optim.l2_penalty(g.params, g.l2).double()
    res = dict(loss=loss.cpu().numpy())
    if point_head and final and (not is_test or head.val_rmse is None):
        # the MSE fit's noise: per-coordinate RMSE on the validation set (the test set's own without one)
        head.val_rmse = (sq / (n * head.T * 2)).sqrt().cpu().numpy()
    if final and is_test:
        res.update(test_metrics(head, X, y))
    elif final:   # validation: the metrics every model shares, which rank the models (explain's reference)
        res.update(shared_metrics(head, X, y))
    return res


VAL_STREAM = 1 << 48   # validation rows draw from rows + this: streams apart from the test rows'


def shared_metrics(head, X: torch.Tensor, y: torch.Tensor, chunk: int = CHUNK) -> dict[str, np.ndarray]:
    """ADE, FDE, minADE_k and minFDE_k on (X, y): what every trajectory model has, whatever
    its loss (its own loss never ranks it against another model's)."""
    k = head.tr.k
    Yo = y.double().cpu().numpy().reshape(len(y), head.tr.n_future, 2)
    acc: dict[str, list] = {"ade": [], "fde": [], "min_ade": [], "min_fde": []}
    for i in range(0, len(X), chunk):
        rows = np.arange(i, min(len(X), i + chunk))
        g = head.g
        idx = torch.as_tensor(rows, device=g.device).expand(g.M, -1)
        xb = g.inputs(X, idx)
        d = head.decode(xb, g.forward(g.params, xb, targets=g.targets(y, idx)), k, rows + VAL_STREAM)
        acc["ade"].append(mt.ade(d["point"], Yo[rows]))
        acc["fde"].append(mt.fde(d["point"], Yo[rows]))
        acc["min_ade"].append(mt.min_ade(d["samples"], Yo[rows]))
        acc["min_fde"].append(mt.min_fde(d["samples"], Yo[rows]))
    cat = {name: np.concatenate(v, 1).mean(1) for name, v in acc.items()}
    return {"ade": cat["ade"], "fde": cat["fde"], f"min_ade_{k}": cat["min_ade"], f"min_fde_{k}": cat["min_fde"]}


def _decode_rows(head, X, y, rows: np.ndarray):
    g = head.g
    idx = torch.as_tensor(rows, device=g.device).expand(g.M, -1)
    xb, yb = g.inputs(X, idx), g.targets(y, idx)
    return head.decode(xb, g.forward(g.params, xb, targets=yb), head.tr.k, rows)


def test_metrics(head, X: torch.Tensor, y: torch.Tensor, chunk: int = CHUNK) -> dict[str, np.ndarray]:
    """Every metric on (X, y), decoded ``chunk`` rows at a time (the numbers do not depend on
    ``chunk``: each row's sampling draws come from its own stream, see ``_Head.row_draws``)."""
    tr, G, lo, hi, M = head.tr, head.G, head.lo, head.hi, head.g.M
    meta = head.g.dataset_meta.get("trajectory", {})
    tmap = meta.get("map")
    generated = bool(meta.get("generated"))
    Xo = X.double().cpu().numpy().reshape(len(X), tr.n_obs, 2)
    Yo = y.double().cpu().numpy().reshape(len(y), tr.n_future, 2)
    acc: dict[str, list] = {k: [] for k in ("ade", "fde", "min_ade", "min_fde", "nll", "modes", "err2", "spread2",
                                                  "mass", "dist", "between")}
    radius = mt.mode_radius(Xo, tr.n_future)   # measures that need no ground-truth branches (see _metrics)
    if generated:   # where an agent taking each branch ends (the test set's own, noise-free)
        ends = meta["test"]["branch_futures"][: len(X), :, -1]
    for i in range(0, len(X), chunk):
        rows = np.arange(i, min(len(X), i + chunk))
        d = _decode_rows(head, X, y, rows)
        yt = Yo[rows]
        acc["ade"].append(mt.ade(d["point"], yt))
        acc["fde"].append(mt.fde(d["point"], yt))
        acc["min_ade"].append(mt.min_ade(d["samples"], yt))
        acc["min_fde"].append(mt.min_fde(d["samples"], yt))
        finals = d["samples"][:, :, :, -1]                                        # (M, b, K, 2)
        acc["modes"].append(mt.distinct_modes(finals, radius))
        err2, spread2 = mt.spread_terms(finals, yt[None, :, -1])
        acc["err2"].append(err2)
        acc["spread2"].append(spread2)
        probs = mt.normalise(d["cells"])
        acc["nll"].append(mt.grid_nll(probs, np.broadcast_to(mt.cell_index(yt, lo, hi, G), probs.shape[:-1]),
                                      lo, hi, G).mean(-1))
        if generated:
            loc = tmap.locate(Xo[rows])
            if d["final"] is not None:
                mass = mt.branch_mass_from_points(d["final"], loc["centre"], loc["heading"])
            else:
                last = d["cells"][:, :, -1]
                mass = mt.branch_mass_from_cells(last / last.sum(-1, keepdims=True), loc["centre"], loc["heading"],
                                                 lo, hi, G)
            acc["mass"].append(mass)
            avail = np.array([JUNCTION_TYPES[tmap.junction_types[t]] for t in loc["type"]])
            acc["dist"].append(mt.distance_to_branches(d["point"][:, :, -1], ends[rows], avail))
            acc["between"].append(mt.between_branches(d["point"][:, :, -1], ends[rows], avail))
    cat = {k: np.concatenate(v, 1) for k, v in acc.items() if v}
    k = tr.k
    res = {"ade": cat["ade"].mean(1), "fde": cat["fde"].mean(1), f"min_ade_{k}": cat["min_ade"].mean(1),
           f"min_fde_{k}": cat["min_fde"].mean(1), "grid_nll": cat["nll"].mean(1),
           "modes": cat["modes"].mean(1), "spread_skill": mt.spread_skill(cat["err2"], cat["spread2"], k)}
    nan = np.full(M, np.nan)
    if not generated:   # a user's file: no branches to check; the first test tracks for the report
        res["branch_abs_error"] = nan
        res.update(showcase(head, X, y, np.arange(min(SHOWCASE, len(X)))))
        return res
    loc = tmap.locate(Xo)
    true = np.stack([tmap.type_probs(t) for t in tmap.junction_types])
    per_type, err = mt.branch_recovery(cat["mass"], loc["type"], true)
    res["branch_abs_error"] = err
    avail = np.array([JUNCTION_TYPES[tmap.junction_types[t]] for t in loc["type"]])
    res["branch_distance"] = cat["dist"].mean(1)
    res["between_share"] = cat["between"].mean(1)
    res["truth_branch_distance"] = np.full(M, mt.distance_to_branches(Yo[:, -1], ends, avail).mean())
    for j, jt in enumerate(tmap.junction_types):
        for b, name in enumerate(BRANCHES):
            res[f"branch_mass.{jt}.{name}"] = per_type[:, j, b]
            res[f"true_mass.{jt}.{name}"] = np.full(M, true[j, b])
    types = loc["type"]
    first = [int(np.flatnonzero(types == t)[0]) for t in range(len(tmap.junction_types)) if (types == t).any()]
    res.update(showcase(head, X, y, np.asarray(first[:SHOWCASE])))
    return res


def showcase(head, X, y, rows: np.ndarray) -> dict[str, np.ndarray]:
    """A few test samples for the report (``rows``: generated data, the first of each junction
    type; a user's file, its first test tracks): their row, the heatmap (mean cell mass over
    the future steps), the best single prediction and the K sampled futures of every model."""
    rows = [int(r) for r in rows]
    d = _decode_rows(head, X, y, np.asarray(rows))
    cells = d["cells"] / d["cells"].sum(-1, keepdims=True)
    heat = cells.mean(2)                                                      # (M, s, G²)
    out = {}
    M = heat.shape[0]
    for i, r in enumerate(rows):
        out[f"show.{i}.row"] = np.full(M, float(r))
        for c in range(heat.shape[-1]):
            out[f"show.{i}.heat.{c}"] = heat[:, i, c]
        for t in range(head.T):
            for a in range(2):
                out[f"show.{i}.point.{t}.{a}"] = d["point"][:, i, t, a]
                for s in range(d["samples"].shape[2]):
                    out[f"show.{i}.sample.{s}.{t}.{a}"] = d["samples"][:, i, s, t, a]
    return out
