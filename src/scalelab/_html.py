"""One self-contained HTML report per study: the question, the resolved spec, the results
table, seed-banded curves, the final metric against each swept factor, probe plots over
steps, the findings and the environment. Figures are drawn with matplotlib and inlined
as PNG (data: URIs), so the file opens offline and can be attached to a message; the same
figures can be written as PNG and SVG files for papers and slides.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._levels import LevelRecord, level_label, read_levels, value_label
from ._report import NAMES, ci_metric, factor_cells, metric_cells, shown_metrics, summarize_levels
from ._store import Store
from ._explain import explain_views, level_views
from .probes import AdamEps, Activations, Gradients, Hessian, Logits, PreactivationStep, ZeroGradient


@dataclass
class Figure:
    name: str        # file stem, e.g. "curves"
    title: str
    caption: str
    fig: object      # matplotlib Figure


def _band(ax, x, values, label, color):
    """Mean line and min–max band over seeds; values of shape (n_seeds, len(x))."""
    v = np.asarray(values, dtype=float)
    mean = np.nanmean(v, axis=0)
    ax.plot(x, mean, color=color, lw=2, label=label, marker="o" if len(x) <= 12 else None, ms=3)
    if v.shape[0] > 1:
        ax.fill_between(x, np.nanmin(v, axis=0), np.nanmax(v, axis=0), color=color, alpha=0.2, lw=0)


def _spans_decades(values) -> bool:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0])
    return len(v) > 1 and v.max() / v.min() >= 30


def _is_regression(levels: list[LevelRecord]) -> bool:
    return any(math.isfinite(e.get("test_mse", math.nan)) for lv in levels for r in lv.trials for e in r.epochs)


def _finished(lv: LevelRecord) -> list[list[dict]]:
    """The epoch metrics of each trial of a level that finished (not diverged)."""
    return [r.epochs for r in lv.trials if r.done]


def _curves(levels, colors) -> Figure:
    import matplotlib.pyplot as plt

    has_val = any(math.isfinite(e["val_loss"]) for lv in levels for r in lv.trials for e in r.epochs)
    if _is_regression(levels):
        panels = [("train_loss", "train loss"), *([("val_mse", "validation MSE")] if has_val else []),
                  ("test_mse", "test MSE"), ("test_r2", "test R²")]
    else:
        panels = [("train_loss", "train loss"), ("test_loss", "test loss"), ("test_acc", "test accuracy")]
        if has_val:
            panels[1] = ("val_loss", "validation loss")
            panels.append(("val_acc", "validation accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), constrained_layout=True)
    all_loss = []
    for lv, color in zip(levels, colors):
        done = _finished(lv)
        if not done:
            continue
        n = min(len(e) for e in done)
        x = [e["epoch"] for e in done[0][:n]]
        for ax, (key, name) in zip(axes, panels):
            vals = [[e[key] for e in eps[:n]] for eps in done]
            if "loss" in key or "mse" in key:
                all_loss += [v for row in vals for v in row]
            _band(ax, x, vals, lv.label, color)
    from matplotlib.ticker import MaxNLocator

    for ax, (key, name) in zip(axes, panels):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ("loss" in key or "mse" in key) and _spans_decades(all_loss):
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    return Figure("curves", "Training curves", "Mean over seeds (line) and min–max over seeds (band), per sweep "
                  "level; diverged trials are left out of the curves and listed below.", fig)


def _vs_factor(levels, records, colors) -> list[Figure]:
    import matplotlib.pyplot as plt

    factors = list(levels[0].level) if levels else []
    figs = []
    # against each factor (a log axis when numeric and spanning decades; the levels sharing a
    # factor value sit at the same x, told apart by colour); with several factors, also one
    # point per level labelled with all of its factor values
    for f in factors + ([None] if len(factors) > 1 else []):
        values = [lv.level[f] for lv in levels] if f else [None] * len(levels)
        numeric = f is not None and all(not isinstance(v, bool) and _fraction(v) is not None for v in values)
        fig, axes = plt.subplots(1, 2, figsize=(8.4 if f else max(8.4, 1.3 * len(levels)), 3.4 if f else 3.9),
                                 constrained_layout=True)
        second = ("test_mse", "final test MSE (original units)") if _is_regression(levels) else \
            ("test_acc", "final test accuracy")
        for ax, key, name in ((axes[0], "train_loss", "final train loss"), (axes[1], *second)):
            xs, labels = [], []
            cats = list(dict.fromkeys(json.dumps(lv.level[f], default=str) for lv in levels)) if f else []
            per_cat = {c: [j for j, lv in enumerate(levels) if json.dumps(lv.level[f], default=str) == c]
                       for c in cats}
            for i, (lv, color) in enumerate(zip(levels, colors)):
                if numeric:
                    x = _fraction(lv.level[f])
                elif f:  # categories at 0, 1, ...; the levels sharing one spread a little
                    c = json.dumps(lv.level[f], default=str)
                    k, n = per_cat[c].index(i), len(per_cat[c])
                    x = cats.index(c) + (k - (n - 1) / 2) * min(0.12, 0.7 / n)
                else:
                    x = i
                finals = [eps[-1][key] for eps in _finished(lv)]
                if finals:
                    ax.scatter([x] * len(finals), finals, color=color, alpha=0.5, s=14)
                    mean = np.mean(finals)  # a float mean can lie a rounding past min or max
                    ax.errorbar([x], [mean], yerr=[[max(0.0, mean - np.min(finals))],
                                                   [max(0.0, np.max(finals) - mean)]],
                                fmt="D", color=color, capsize=4, ms=6, label=lv.label)
                n_div = lv.n_diverged
                if n_div:
                    ax.annotate(f"{n_div} diverged", (x, 0.02), xycoords=("data", "axes fraction"), color="crimson",
                                ha="center", fontsize=8)
                xs.append(x)
                labels.append(value_label(lv.level[f]) if f else
                              "\n".join(value_label(v) for v in lv.level.values()))
            if numeric and _spans_decades(xs):
                ax.set_xscale("log")
            if key in ("train_loss", "test_mse"):
                losses = [eps[-1][key] for lv in levels for eps in _finished(lv)]
                if _spans_decades(losses):
                    ax.set_yscale("log")
            if f and not numeric:
                xs = list(range(len(cats)))
                labels = [value_label(levels[per_cat[c][0]].level[f]) for c in cats]
            ax.set_xticks(xs)
            ax.set_xticklabels(labels, rotation=30 if len(xs) > 4 and f else 0, fontsize=8 if not f else None)
            ax.minorticks_off()
            ax.set_xlabel(f or " / ".join(factors))
            ax.set_title(name)
            ax.grid(alpha=0.3)
        if f and len(factors) > 1:
            axes[0].legend(fontsize=7)
        figs.append(Figure(f"final-vs-{f}".replace(".", "-") if f else "final-by-level",
                           f"Final metrics against {f}" if f else "Final metrics per sweep level",
                           "Each seed (dots), the mean and its min–max range (diamond and bars)"
                           + (" on a log axis" if numeric and _spans_decades(xs) else "") + ".", fig))
    return figs


def _fraction(v):
    from fractions import Fraction

    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(Fraction(str(v).replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        return None


# The probe quantities worth a panel, in order of usefulness; a panel is drawn when recorded.
PROBE_PANELS = [
    (ZeroGradient.name, ZeroGradient.SHARE, "share of samples with zero loss gradient", False),
    (Logits.name, Logits.TOP_CLASS_SHARE, "share of predictions in the top class", False),
    (PreactivationStep.name, PreactivationStep.RMS_CHANGE.format(layer=0),
     "first-layer pre-activation change per step (RMS)", True),
    (Activations.name, Activations.DEAD_FRAC.format(layer=0), "dead units, first hidden layer", False),
    (Logits.name, Logits.MAX_ABS, "max |logit|", True),
    (Gradients.name, Gradients.TOTAL_NORM, "gradient norm", True),
    (AdamEps.name, AdamEps.DOMINATED_FRAC.format(param="dense0.W"), "first-layer entries where Adam's eps dominates",
     False),
    (Hessian.name, Hessian.TOP_EIGENVALUE, "top Hessian eigenvalue", True),
]


def _probe_figure(levels, colors) -> Figure | None:
    import matplotlib.pyplot as plt

    present = [p for p in PROBE_PANELS
               if any(r[1] == p[0] and r[2] == p[1] for lv in levels for rec in lv.trials for r in rec.probes)]
    if not present:
        return None
    cols = 2 if len(present) > 1 else 1
    rows_n = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 3.1 * rows_n), constrained_layout=True, squeeze=False)
    for ax, (probe, name, title, log_y) in zip(axes.flat, present):
        for lv, color in zip(levels, colors):
            series = {}
            for k, rec in enumerate(lv.trials):
                if rec.status == "diverged":  # listed under "Diverged trials", not averaged in
                    continue
                for step, p, n, v in rec.probes:
                    if p == probe and n == name:
                        series.setdefault(step, {})[k] = np.nan if v is None else v
            if not series:
                continue
            steps = sorted(series)
            seeds = sorted({k for d in series.values() for k in d})
            vals = [[series[s].get(k, np.nan) for s in steps] for k in seeds]
            _band(ax, np.asarray(steps) + 1, vals, lv.label, color)
        ax.set_xscale("log")
        ax.set_xlabel("step + 1")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if log_y:
            # symlog: values spanning decades stay readable and exact zeros (a stopped
            # gradient) stay visible, which a log axis would drop
            ys = np.concatenate([ln.get_ydata() for ln in ax.get_lines()]) if ax.get_lines() else np.array([])
            pos = ys[np.isfinite(ys) & (ys > 0)]
            if len(pos) and _spans_decades(pos):
                ax.set_yscale("symlog", linthresh=float(max(np.min(pos), np.max(pos) * 1e-5)))
                ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[len(present):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    return Figure("probes", "Inside training: probes over steps",
                  "Mean over seeds and min–max band, per sweep level, at the probed steps (log-spaced).", fig)


def build_figures(store: Store, study: str) -> tuple[list[Figure], dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = store.require_study(study)
    levels = read_levels(store, study)
    records = summarize_levels(levels)
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(levels))]
    figs = [_curves(levels, colors), *_vs_factor(levels, records, colors)]
    pf = _probe_figure(levels, colors)
    if pf is not None:
        figs.append(pf)
    return figs, dict(info=info, levels=levels, records=records)


def _png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.q{font-size:1.05rem;color:#333;background:#f5f7fa;padding:.6rem .8rem;border-left:4px solid #4c78a8}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .55rem;border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}figure{margin:1rem 0}figure img{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.8rem}
li{margin:.35rem 0}.id{font-family:monospace;background:#eef;padding:0 .25rem}.bad{color:#b00020}
@media (max-width:600px){body{padding:.5rem}h1{font-size:1.2rem}}
"""


def render_html(store: Store, study: str, png_dir: str | Path | None = None) -> str:
    """The report as one HTML string; with ``png_dir``, each figure is also written there
    as ``NAME.png`` and ``NAME.svg``."""
    import matplotlib.pyplot as plt

    figs, data = build_figures(store, study)
    info, levels, records = data["info"], data["levels"], data["records"]
    if png_dir is not None:
        png_dir = Path(png_dir)
        png_dir.mkdir(parents=True, exist_ok=True)
        for f in figs:
            f.fig.savefig(png_dir / f"{f.name}.png", dpi=150)
            f.fig.savefig(png_dir / f"{f.name}.svg")
    images = [(f, _png_b64(f.fig)) for f in figs]
    for f in figs:
        plt.close(f.fig)
    findings = explain_views(level_views(levels))   # the levels read once, for figures, table and findings
    spec = info["spec"]
    e = html.escape
    trials = [r.trial for lv in levels for r in lv.trials]
    env = trials[0]["env"] if trials else {}
    wall = sum(t["wall_s"] or 0 for t in trials)

    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>scalelab — {e(study)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(study)}</h1>"]
    if spec.get("question"):
        parts.append(f"<p class='q'>{e(spec['question'])}</p>")
    n_div = sum(t["status"] == "diverged" for t in trials)
    parts.append(f"<p>{len(trials)} trials: {len(levels)} sweep levels × seeds {e(str(spec.get('seeds')))}"
                 f", profile <b>{e(str(spec.get('profile')))}</b>"
                 + (f", <span class='bad'>{n_div} diverged</span>" if n_div else "") + ".</p>")

    # results table
    parts.append("<h2>Results</h2><div class='scroll'><table data-role='results'><thead><tr>")
    factors = list(levels[0].level) if levels else []
    metrics, ci = shown_metrics(records), ci_metric(records)
    head = [*(factors or ["level"]), "seeds", "diverged", *(NAMES[m] for m in metrics), f"{NAMES[ci]} 95% CI"]
    parts.append("".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for r in records:
        cells = [*factor_cells(r, factors), str(r["n_seeds"]), str(r["n_diverged"]), *metric_cells(r, metrics, ci)]
        cls = " class='bad'" if r["n_diverged"] else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</tbody></table></div><p><small>mean ± sample std over seeds that finished; the CI is the "
                 "t-interval of the mean.</small></p>")

    # findings
    parts.append("<h2>Findings</h2>")
    if findings:
        parts.append("<ul data-role='findings'>" + "".join(
            f"<li><span class='id'>{e(f.id)}</span> {e(f.text)}</li>" for f in findings) + "</ul>")
    else:
        parts.append("<p>No findings. Most rules read probe records: run with <code>--probes standard</code> to record them."
                     "</p>")

    # figures
    parts.append("<h2>Figures</h2>")
    for f, b64 in images:
        parts.append(f"<figure><img data-plot='{e(f.name)}' alt='{e(f.title)}' src='data:image/png;base64,{b64}'>"
                     f"<figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption></figure>")

    # diverged trials
    div = [t for t in trials if t["status"] == "diverged"]
    if div:
        parts.append("<h2>Diverged trials</h2><ul>" + "".join(
            f"<li class='bad'>{e(level_label(t['level']))}, seed {t['seed']}: loss not finite from step "
            f"{t['diverged_step']}</li>" for t in div) + "</ul>")

    # the resolved spec (profile filled in) of the first trial, and what the study varies
    resolved = trials[0]["spec"] if trials else spec
    varied = {k: spec[k] for k in ("seeds", "grid", "arms") if spec.get(k)}
    parts.append("<h2>Spec</h2><p>Resolved (profile defaults filled in), as the first trial ran it; the study "
                 "varies:</p><pre>" + e(json.dumps(varied, indent=2, default=str)) + "</pre><pre>"
                 + e(json.dumps(resolved, indent=2, default=str)) + "</pre>")
    parts.append("<h2>Environment</h2><div class='scroll'><table data-role='environment'>" + "".join(
        f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in env.items())
        + f"<tr><td>training wall time (sum over trials' shares)</td><td>{wall:.1f} s</td></tr></table></div>")
    parts.append("<p><small>Written by scalelab; this file is self-contained (no network).</small></p></body></html>")
    return "\n".join(parts)


def write_report(store: Store, study: str, out: str | Path, png_dir: str | Path | None = None) -> Path:
    out = Path(out)
    if out.is_dir():   # refused before anything is written (no OUT.part left behind)
        raise ValueError(f"report output {out} is a folder; give a file name, e.g. -o {out / (study + '.html')}")
    if png_dir is not None and Path(png_dir).exists() and not Path(png_dir).is_dir():
        raise ValueError(f"--png {png_dir} is a file; give a folder for the figures")
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(store, study, png_dir)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
