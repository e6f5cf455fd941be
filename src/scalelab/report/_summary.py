"""Summaries of a stored study: per sweep level, mean ± std and a 95% CI across seeds."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from .._format import fmt, level_label, value_label

from .._store._levels import LevelRecord, read_levels
from .._store import Store
from ._console import _console, print_rich  # noqa: F401  (print_rich: the CLI's name for it)

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


def _table_parts(records: list[dict]):
    """The summary table's columns as (header, justify, optional) and its rows of cells;
    optional columns (the CI and the per-epoch means) are the ones a narrow terminal drops."""
    units = any(r.get("loss_units") == "transformed" for r in records)
    factors = list(records[0]["level"]) if records else []
    cols = [(f, "left", False) for f in factors or ["level"]] + [("seeds", "right", False)]
    metrics = shown_metrics(records)
    ci = ci_metric(records)
    cols += [(NAMES[m] + (" ᵗ" if m == "final_train_loss" and units else ""), "right", False) for m in metrics]
    cols.append((f"{NAMES[ci]} 95% CI", "right", True))
    n_ep = max((len(r["train_loss_by_epoch"]) for r in records), default=0)
    shown_ep = _epoch_sample(n_ep)
    which = "by epoch" if len(shown_ep) == n_ep else "at epochs " + ",".join(str(e + 1) for e in shown_ep)
    cols.append((f"train loss {which}", "left", True))
    with_val_acc = any(math.isfinite(x) for r in records for x in r["val_acc_by_epoch"])
    with_val = with_val_acc  # regression: the validation loss is in each level's own target units; see val RMSE
    if with_val:
        cols.append((f"val loss {which}", "left", True))
    if with_val_acc:
        cols.append((f"val acc {which}", "left", True))
    rows = []
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
        rows.append(cells)
    caption = "metrics: mean ± std over seeds" + (
        "; ᵗ train loss in transformed target units where target.transform ≠ none, RMSE and R² in original units"
        if units else "")
    return cols, rows, caption


def render_table(records: list[dict], title: str = "", drop: int = 0):
    """A rich Table of the summary records: one column per swept factor, then mean ± std
    per metric, the 95% CI of test accuracy (regression: test RMSE), and the per-epoch means;
    ``drop``: leave out that many optional columns, the last first."""
    from rich.table import Table

    cols, rows, caption = _table_parts(records)
    optional = [i for i, c in enumerate(cols) if c[2]]
    gone = set(optional[len(optional) - drop:]) if drop else set()
    if gone:
        caption += f"; left out for the terminal's width: {', '.join(cols[i][0] for i in sorted(gone))} " \
                   f"(scalelab show --format csv has every column)"
    table = Table(title=title or None, caption=caption)
    for i, (head, justify, _) in enumerate(cols):
        if i not in gone:
            table.add_column(head, justify=justify, overflow="fold")
    for cells in rows:
        table.add_row(*(c for i, c in enumerate(cells) if i not in gone))
    return table


def render_stacked(records: list[dict], title: str = ""):
    """The summary as one block per level (level, then each metric on a line of its own): for
    a terminal too narrow for the columns, where they would fold numbers mid-digit."""
    from rich.table import Table

    cols, rows, caption = _table_parts(records)
    n_key = next(i for i, c in enumerate(cols) if c[0] == "seeds")
    table = Table(title=title or None, caption=caption, show_lines=True)
    table.add_column("level")
    table.add_column("results")
    for cells in rows:
        level = "\n".join(f"{cols[i][0]} = {cells[i]}" for i in range(n_key))
        table.add_row(level, "\n".join(f"{cols[i][0]}: {cells[i]}" for i in range(n_key, len(cols)) if cells[i]))
    return table


def print_table(records: list[dict], title: str = "", console=None) -> None:
    """Print the summary table to stdout (see :func:`print_rich`): with every column where it
    fits the width unwrapped, else without the optional columns, else one block per level
    (an 80-column terminal cut the table's right border off and folded numbers)."""
    from rich.measure import Measurement

    console = console or _console()
    n_optional = sum(c[2] for c in _table_parts(records)[0])
    unbounded = console.options.update_width(100_000)   # the table's natural width, nothing folded
    for drop in range(n_optional + 1):
        table = render_table(records, title, drop)
        if Measurement.get(console, unbounded, table).maximum <= console.width:
            console.print(table)
            return
    console.print(render_stacked(records, title))
