"""Summaries of a stored study: per sweep level, mean ± std and a 95% CI across seeds."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ._spec import level_label
from ._store import Store

SUMMARY_METRICS = ("final_train_loss", "test_loss", "test_accuracy")


def describe(values) -> dict:
    """mean, sample std and the t-based 95% confidence interval of the mean over finite values."""
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
    return dict(mean=mean, std=std, ci95=[mean - half, mean + half], n=n)


def summarize(store: Store, study: str) -> list[dict]:
    """One record per sweep level (see the CLI's ``show --format json``)."""
    info = store.require_study(study)
    out = []
    for trials in store.trials_by_level(info["id"]).values():
        rec = dict(level=trials[0]["level"], trials=[(t, store.epochs(t["id"])) for t in trials])
        finals = {m: [] for m in SUMMARY_METRICS}
        by_epoch: dict[int, list] = {}
        val_by_epoch: dict[int, list] = {}
        n_div = 0
        for t, eps in rec["trials"]:
            n_div += t["status"] == "diverged"
            if t["status"] == "diverged" or not eps:
                continue
            finals["final_train_loss"].append(eps[-1]["train_loss"])
            finals["test_loss"].append(eps[-1]["test_loss"])
            finals["test_accuracy"].append(eps[-1]["test_acc"])
            for e in eps:
                by_epoch.setdefault(e["epoch"], []).append(e["train_loss"])
                val_by_epoch.setdefault(e["epoch"], []).append((e["val_loss"], e["val_acc"]))
        r = dict(level=rec["level"], n_seeds=len(rec["trials"]), n_diverged=n_div)
        for m in SUMMARY_METRICS:
            d = describe(finals[m])
            r[m] = dict(mean=d["mean"], std=d["std"], ci95=d["ci95"])
        r["train_loss_by_epoch"] = [float(np.mean(by_epoch[e])) for e in sorted(by_epoch)]
        # validation curves only where the study held out a validation set
        has_val = any(math.isfinite(v[0]) for vs in val_by_epoch.values() for v in vs)
        r["val_loss_by_epoch"] = [float(np.mean([v[0] for v in val_by_epoch[e]])) for e in sorted(val_by_epoch)] \
            if has_val else []
        r["val_acc_by_epoch"] = [float(np.mean([v[1] for v in val_by_epoch[e]])) for e in sorted(val_by_epoch)] \
            if has_val else []
        out.append(r)
    return out


def _fmt(x, digits=4):
    return "—" if x is None else f"{x:.{digits}g}"


def _level_text(level: dict) -> str:
    return ", ".join(f"{k}={level_label(v)}" for k, v in level.items()) or "(base)"


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
        row = [_level_text(r["level"]), r["n_seeds"], r["n_diverged"]]
        for m in SUMMARY_METRICS:
            row += [r[m]["mean"], r[m]["std"], *r[m]["ci95"]]
        row += r["train_loss_by_epoch"] + [""] * (n_ep - len(r["train_loss_by_epoch"]))
        for m in ("val_loss_by_epoch", "val_acc_by_epoch"):
            row += r[m] + [""] * (n_val - len(r[m]))
        w.writerow(row)
    return buf.getvalue()


def render_table(records: list[dict], title: str = ""):
    """A rich Table of the summary records: one column per swept factor, then mean ± std
    per metric, the 95% CI of test accuracy, and the per-epoch mean train loss."""
    from rich.table import Table

    table = Table(title=title or None)
    factors = list(records[0]["level"]) if records else []
    for f in factors or ["level"]:
        table.add_column(f, no_wrap=True)
    table.add_column("seeds", justify="right")
    names = {"final_train_loss": "train loss", "test_loss": "test loss", "test_accuracy": "test acc"}
    for m in SUMMARY_METRICS:
        table.add_column(f"{names[m]} (mean ± std)", justify="right", no_wrap=True)
    table.add_column("test acc 95% CI", justify="right", no_wrap=True)
    table.add_column("train loss by epoch", no_wrap=True)
    with_val = any(r["val_loss_by_epoch"] for r in records)
    if with_val:
        table.add_column("val loss by epoch", no_wrap=True)
        table.add_column("val acc by epoch", no_wrap=True)
    for r in records:
        cells = [level_label(r["level"][f]) for f in factors] if factors else ["(base)"]
        cells.append(f"{r['n_seeds']}" + (f" ({r['n_diverged']} diverged)" if r["n_diverged"] else ""))
        for m in SUMMARY_METRICS:
            cells.append(f"{_fmt(r[m]['mean'])} ± {_fmt(r[m]['std'], 2)}")
        lo, hi = r["test_accuracy"]["ci95"]
        cells.append(f"[{_fmt(lo)}, {_fmt(hi)}]")
        cells.append(" ".join(f"{x:.4g}" for x in r["train_loss_by_epoch"]))
        if with_val:
            cells.append(" ".join(f"{x:.4g}" for x in r["val_loss_by_epoch"]))
            cells.append(" ".join(f"{x:.4g}" for x in r["val_acc_by_epoch"]))
        table.add_row(*cells)
    return table


def print_table(records: list[dict], title: str = "") -> None:
    """Print the table to stdout, wide enough not to wrap when stdout is a file or a pipe."""
    import sys

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(render_table(records, title))
