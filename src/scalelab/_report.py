"""Summaries of a stored study: per sweep level, mean ± std and a 95% CI across seeds."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ._levels import LevelRecord, fmt, level_label, read_levels, value_label
from ._store import Store

SUMMARY_METRICS = ("final_train_loss", "test_loss", "test_accuracy",
                   # regression, in the targets' original units (RMSE = sqrt of each trial's MSE)
                   "val_rmse", "test_rmse", "val_r2", "test_r2", "test_corr")
_FROM_EPOCH = {"final_train_loss": "train_loss", "test_loss": "test_loss", "test_accuracy": "test_acc",
               "val_r2": "val_r2", "test_r2": "test_r2", "test_corr": "test_corr"}


def _final(metric: str, last: dict):
    if metric in ("val_rmse", "test_rmse"):
        mse = last.get(metric.replace("rmse", "mse"))
        return math.sqrt(mse) if mse is not None and math.isfinite(mse) else None
    return last.get(_FROM_EPOCH[metric])


def describe(values, bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict:
    """mean, sample std and the t-based 95% confidence interval of the mean over finite values,
    the interval cut to the metric's ``bounds`` (an accuracy's mean lies in [0, 1])."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    n = len(v)
    if n == 0:
        return dict(mean=None, std=None, ci95=[None, None], n=0)
    mean = float(v.mean())
    if n == 1:
        return dict(mean=mean, std=0.0, ci95=[mean, mean], n=1)
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return dict(mean=mean, std=std, ci95=[max(bounds[0], mean - half), min(bounds[1], mean + half)], n=n)


def summarize(store: Store, study: str) -> list[dict]:
    """One record per sweep level (see the CLI's ``show --format json``)."""
    return summarize_levels(read_levels(store, study))


def summarize_levels(levels: list[LevelRecord]) -> list[dict]:
    """:func:`summarize` over levels already read (the HTML report reads a study once)."""
    out = []
    for lv in levels:
        finals = {m: [] for m in SUMMARY_METRICS}
        by_epoch: dict[int, list] = {}
        val_by_epoch: dict[int, list] = {}
        for rec in lv.trials:
            if rec.status == "diverged" or not rec.epochs:
                continue
            for m in SUMMARY_METRICS:
                finals[m].append(_final(m, rec.epochs[-1]))
            for e in rec.epochs:
                by_epoch.setdefault(e["epoch"], []).append(e["train_loss"])
                val_by_epoch.setdefault(e["epoch"], []).append((e["val_loss"], e["val_acc"]))
        spec = lv.trials[0].trial["spec"] if lv.trials else {}
        transformed = spec.get("target", {}).get("transform", "none") != "none" and \
            spec.get("loss", {}).get("name") != "crossentropy"
        r = dict(level=lv.level, n_seeds=len(lv.trials), n_diverged=lv.n_diverged,
                 loss_units="transformed" if transformed else "original")
        for m in SUMMARY_METRICS:
            d = describe(finals[m], (0.0, 1.0) if "acc" in m else (-math.inf, 1.0) if m.endswith("r2") else
                         (-math.inf, math.inf))
            r[m] = dict(mean=d["mean"], std=d["std"], ci95=d["ci95"])
        r.update(extra_summaries(lv))
        r["train_loss_by_epoch"] = [float(np.mean(by_epoch[e])) for e in sorted(by_epoch)]
        # validation curves only where the study held out a validation set
        has_val = any(math.isfinite(v[0]) for vs in val_by_epoch.values() for v in vs)
        r["val_loss_by_epoch"] = [float(np.mean([v[0] for v in val_by_epoch[e]])) for e in sorted(val_by_epoch)] \
            if has_val else []
        r["val_acc_by_epoch"] = [float(np.mean([v[1] for v in val_by_epoch[e]])) for e in sorted(val_by_epoch)] \
            if has_val else []
        out.append(r)
    return out


def extra_summaries(lv: LevelRecord) -> dict:
    """A registered loss's own test metrics (stored as ``test_<name>``, e.g. ``test_ade``) under
    ``<name>``: mean, std and 95% CI over the level's finished seeds; the report's sample
    drawings (``test_show.…``) are left out."""
    finals = [rec.epochs[-1] for rec in lv.trials if rec.status != "diverged" and rec.epochs]
    names = sorted({k for f in finals for k in f if k.startswith("test_") and not k.startswith("test_show.")}
                   - set(_EXTRA_SKIP))
    out = {}
    for k in names:
        d = describe([f.get(k) for f in finals])
        out[k[5:]] = dict(mean=d["mean"], std=d["std"], ci95=d["ci95"])
    return out


_EXTRA_SKIP = ("test_loss", "test_acc", "test_mse", "test_r2", "test_corr")


def to_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["level", "n_seeds", "n_diverged"]
    for m in SUMMARY_METRICS:
        header += [f"{m}_mean", f"{m}_std", f"{m}_ci95_low", f"{m}_ci95_high"]
    n_ep = max((len(r["train_loss_by_epoch"]) for r in records), default=0)
    header += [f"train_loss_epoch{e + 1}" for e in range(n_ep)]
    n_val = max((len(r["val_loss_by_epoch"]) for r in records), default=0)
    header += [f"val_{m}_epoch{e + 1}" for m in ("loss", "acc") for e in range(n_val)]
    w.writerow(header)
    for r in records:
        row = [level_label(r["level"]), r["n_seeds"], r["n_diverged"]]
        for m in SUMMARY_METRICS:
            row += [r[m]["mean"], r[m]["std"], *r[m]["ci95"]]
        row += r["train_loss_by_epoch"] + [""] * (n_ep - len(r["train_loss_by_epoch"]))
        for m in ("val_loss_by_epoch", "val_acc_by_epoch"):
            row += r[m] + [""] * (n_val - len(r[m]))
        w.writerow(row)
    return buf.getvalue()


NAMES = {"final_train_loss": "train loss", "test_loss": "test loss", "test_accuracy": "test acc",
         "val_rmse": "val RMSE", "test_rmse": "test RMSE", "val_r2": "val R²", "test_r2": "test R²",
         "test_corr": "test corr",
         # a trajectory head's own (the test set; see scalelab.trajectories)
         "ade": "ADE", "fde": "FDE", "min_ade_20": "minADE₂₀", "min_fde_20": "minFDE₂₀", "grid_nll": "grid NLL",
         "branch_abs_error": "branch error"}
TRAJECTORY_METRICS = ("ade", "fde", "min_ade_20", "min_fde_20", "grid_nll", "branch_abs_error")


def _epoch_sample(n: int, most: int = 6) -> list[int]:
    """Epoch indices shown in the table: all of them, or ``most`` spread from first to last."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def shown_metrics(records: list[dict]) -> list[str]:
    """The summary metrics that have a value for some level (classification or regression ones)."""
    shown = [m for m in SUMMARY_METRICS if any(r[m]["mean"] is not None for r in records)]
    if "test_rmse" in shown:  # regression: the loss is in each level's own target units; RMSE is comparable
        shown = [m for m in shown if m not in ("test_loss", "val_r2")]
    traj = [m for m in TRAJECTORY_METRICS if any((r.get(m) or {}).get("mean") is not None for r in records)]
    if traj:   # trajectories: each head's loss is its own; these compare
        shown = [m for m in shown if m != "test_loss"] + traj
    return shown


def ci_metric(records: list[dict]) -> str:
    shown = shown_metrics(records)
    if "branch_abs_error" in shown:
        return "branch_abs_error"
    return "test_accuracy" if "test_accuracy" in shown else "test_rmse"


def factor_cells(r: dict, factors: list[str]) -> list[str]:
    """A summary row's first cells: each swept factor's value, or the level's label
    ("(base)") for a study without factors."""
    return [value_label(r["level"][f]) for f in factors] or [level_label(r["level"])]


def metric_cells(r: dict, metrics: list[str], ci: str) -> list[str]:
    """A summary row's metric cells (the CLI table and the HTML report show the same):
    mean ± std of each metric, then the 95% CI of ``ci``."""
    lo, hi = r[ci]["ci95"]
    return [f"{fmt(r[m]['mean'])} ± {fmt(r[m]['std'], 2)}" for m in metrics] + [f"[{fmt(lo)}, {fmt(hi)}]"]


def render_table(records: list[dict], title: str = ""):
    """A rich Table of the summary records: one column per swept factor, then mean ± std
    per metric, the 95% CI of test accuracy (regression: test RMSE), and the per-epoch means."""
    from rich.table import Table

    # regression with transformed targets: the loss is in those units (RMSE, R² in the original ones)
    units = any(r.get("loss_units") == "transformed" for r in records)
    table = Table(title=title or None, caption="metrics: mean ± std over seeds" + (
        "; ᵗ train loss in transformed target units where target.transform ≠ none, RMSE and R² in original units"
        if units else ""))
    factors = list(records[0]["level"]) if records else []
    width = lambda f: max([len(f)] + [len(value_label(r["level"].get(f, ""))) for r in records])  # noqa: E731
    for f in factors or ["level"]:
        table.add_column(f, overflow="fold", min_width=min(width(f), 12))
    table.add_column("seeds", justify="right", overflow="fold")
    metrics = shown_metrics(records)
    ci = ci_metric(records)
    for m in metrics:
        table.add_column(NAMES[m] + (" ᵗ" if m == "final_train_loss" and units else ""), justify="right",
                         overflow="fold")
    table.add_column(f"{NAMES[ci]} 95% CI", justify="right", overflow="fold")
    n_ep = max((len(r["train_loss_by_epoch"]) for r in records), default=0)
    shown_ep = _epoch_sample(n_ep)
    which = "by epoch" if len(shown_ep) == n_ep else "at epochs " + ",".join(str(e + 1) for e in shown_ep)
    table.add_column(f"train loss {which}", overflow="fold")
    with_val_acc = any(math.isfinite(x) for r in records for x in r["val_acc_by_epoch"])
    with_val = with_val_acc  # regression: the validation loss is in each level's own target units; see val RMSE
    if with_val:
        table.add_column(f"val loss {which}", overflow="fold")
    if with_val_acc:
        table.add_column(f"val acc {which}", overflow="fold")
    for r in records:
        cells = factor_cells(r, factors)
        cells.append(f"{r['n_seeds']}" + (f" ({r['n_diverged']} diverged)" if r["n_diverged"] else ""))
        cells += metric_cells(r, metrics, ci)
        pick = lambda xs: " ".join(f"{xs[e]:.4g}" for e in shown_ep if e < len(xs))  # noqa: E731
        cells.append(pick(r["train_loss_by_epoch"]))
        if with_val:
            cells.append(pick(r["val_loss_by_epoch"]))
        if with_val_acc:
            cells.append(pick(r["val_acc_by_epoch"]))
        table.add_row(*cells)
    return table


def print_rich(renderable) -> None:
    """Print a rich table to stdout: at the terminal's width (columns wrap to fit), or 200
    columns wide into a file or a pipe."""
    import sys

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(renderable)


def print_table(records: list[dict], title: str = "") -> None:
    """Print the summary table to stdout (see :func:`print_rich`)."""
    print_rich(render_table(records, title))
