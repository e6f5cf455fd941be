"""The figures of a stored study: training curves, final metrics against each swept factor,
probe series over steps. Each figure is a group of small panels (one matplotlib figure
each, so a narrow screen stacks them in one column) that share one legend of the levels,
drawn outside the data; a level has the same colour in every figure. Panels render as
inline SVG for the HTML report and as PNG/SVG files (legend added below the axes).
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._format import level_description, value_label, value_number

from .._store._levels import LevelRecord
from ..probes._records import AdamEps, Activations, Gradients, Hessian, Logits, PreactivationStep, ZeroGradient

BANDS = {"std": "mean ± std over seeds", "ci": "95% CI of the mean over seeds", "minmax": "min–max over seeds",
         "none": "no band"}
PANEL_SIZE = (4.2, 3.1)   # inches: about 330 px wide on a phone, 2–3 panels a row on a laptop


@dataclass
class Figure:
    """A group of panels with one shared legend: ``panels`` are (stem, matplotlib Figure),
    ``legend`` (label, description, colour as #rrggbb) per level."""

    name: str
    title: str
    caption: str
    panels: list = field(default_factory=list)
    legend: list = field(default_factory=list)

    def svgs(self) -> list[str]:
        """Each panel as an inline ``<svg>`` (ids prefixed so several can share a page)."""
        return [inline_svg(fig, f"{self.name}-{stem}") for stem, fig in self.panels]

    def save(self, folder: str | Path) -> list[Path]:
        """Write each panel as ``NAME-PANEL.png`` and ``.svg``, with the level legend below the axes."""
        from matplotlib.lines import Line2D

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        handles = [Line2D([], [], color=c, lw=2, marker="o", label=label) for label, _, c in self.legend]
        for stem, fig in self.panels:
            lg = fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), fontsize=7)
            thin_tick_labels(fig)
            for ext in ("png", "svg"):
                fig.savefig(folder / f"{self.name}-{stem}.{ext}", dpi=150)
                out.append(folder / f"{self.name}-{stem}.{ext}")
            lg.remove()
        return out

    def _repr_html_(self) -> str:   # Jupyter shows the figure inline
        return figure_html(self)


def figure_html(f: Figure) -> str:
    """One figure group: its title, the level legend (outside every panel), the panels, the caption."""
    e = html.escape
    legend = "".join(f"<li><span class='sw' style='background:{c}'></span>{e(label)}"
                     + (f" <small>{e(desc)}</small>" if desc else "") + "</li>" for label, desc, c in f.legend)
    return (f"<figure data-plot='{e(f.name)}'><figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption>"
            f"<ul class='legend' data-role='legend'>{legend}</ul><div class='panels'>{''.join(f.svgs())}</div>"
            "</figure>")


def inline_svg(fig, prefix: str) -> str:
    """A matplotlib figure as an ``<svg>`` element that scales with its box (no fixed
    width/height, text kept as text), its ids prefixed with ``prefix``."""
    import matplotlib

    buf = io.StringIO()
    thin_tick_labels(fig)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"#([\w.-]+)([)\"'])", lambda m: f"#{prefix}-{m.group(1)}{m.group(2)}" if m.group(1) in ids
                 else m.group(0), svg)
    return svg.replace("<svg", f"<svg role='img' data-panel='{prefix}'", 1)


def thin_tick_labels(fig, pad_px: float = 4.0) -> None:
    """Hide every tick label that would touch one already kept on its axis (major labels
    first, then the labelled minor ones in order), with ``pad_px`` to spare: the browser
    draws the SVG's text in its own font, a little wider or narrower than matplotlib's.
    Log axes with labelled 2× and 5× ticks and symlog axes near 0 otherwise overlapped."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            kept = []
            for major, ticks in ((True, axis.get_major_ticks()), (False, axis.get_minor_ticks())):
                for t in ticks:
                    label = t.label1
                    if not (label.get_visible() and label.get_text() and lo <= t.get_loc() <= hi):
                        continue
                    box = label.get_window_extent(renderer).padded(pad_px / 2)
                    if any(box.overlaps(k) for k in kept):
                        label.set_visible(False)
                    else:
                        kept.append(box)


def _panel(title: str, width: float = 1.0):
    # not through pyplot: a panel is freed with its Figure, however many a study has
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(PANEL_SIZE[0] * width, PANEL_SIZE[1]), layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return fig, ax


def _band(ax, x, values, color, band: str, bounds: tuple[float, float] | None = None):
    """Mean line and a band over seeds; ``values`` of shape (n_seeds, len(x)); ``bounds``: the
    metric's range (accuracy [0, 1]), which a mean ± std or a t interval must not leave."""
    v = np.asarray(values, dtype=float)
    mean = np.nanmean(v, axis=0)
    ax.plot(x, mean, color=color, lw=2, marker="o" if len(x) <= 12 else None, ms=3)
    n = np.sum(np.isfinite(v), axis=0)
    if v.shape[0] < 2 or band == "none":
        return
    if band == "minmax":
        lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
    else:
        half = np.nanstd(v, axis=0, ddof=1)
        if band == "ci":
            from scipy import stats

            half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * half / np.sqrt(np.maximum(n, 1))
        lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
    ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)


def _spans_decades(values) -> bool:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0])
    return len(v) > 1 and v.max() / v.min() >= 30


def log_axis(ax, axis: str, values) -> None:
    """A log axis whose ticks read as plain numbers; under two decades, the 2× and 5×
    minor ticks are labelled too (a decade-only axis there shows one or two labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0])
    if len(v) and math.log10(v.max() / v.min()) < 2:
        a.set_minor_locator(LogLocator(subs=(2, 5)))
        a.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a.set_tick_params(which="minor", labelsize=7)


def is_regression(levels: list[LevelRecord]) -> bool:
    return any(math.isfinite(e.get("test_mse", math.nan)) for lv in levels for r in lv.trials for e in r.epochs)


def loss_units(levels: list[LevelRecord]) -> str:
    """"" when every level's loss is in the data's own units, else what the loss is in."""
    if not is_regression(levels):
        return ""
    kinds = {r.trial["spec"]["target"]["transform"] != "none" for lv in levels for r in lv.trials}
    return "" if kinds == {False} else "transformed targets" if kinds == {True} else \
        "transformed targets where target.transform ≠ none"


LOSS_NAMES = {"crossentropy": ("cross-entropy", "nats"), "mse": ("MSE", "squared target units"),
              "mae": ("MAE", "target units")}


def loss_name(levels: list[LevelRecord]) -> str:
    """The loss the study trains, with its unit: "cross-entropy, nats", "MSE, squared target units"."""
    names = {r.trial["spec"]["loss"]["name"] for lv in levels for r in lv.trials}
    if len(names) != 1:
        return "loss"
    name, unit = LOSS_NAMES.get(next(iter(names)), (next(iter(names)), ""))
    return f"{name}, {unit}" if unit else name


def _finished(lv: LevelRecord) -> list[list[dict]]:
    return [r.epochs for r in lv.trials if r.done]


def _curves(levels, colors, band, units) -> Figure:
    has_val = any(math.isfinite(e["val_loss"]) for lv in levels for r in lv.trials for e in r.epochs)
    what = loss_name(levels) + (f"; {units}" if units else "")
    loss = f"train loss ({what})"
    if is_regression(levels):
        panels = [("train_loss", loss), *([("val_mse", "validation MSE")] if has_val else []),
                  ("test_mse", "test MSE"), ("test_r2", "test R²")]
    else:
        panels = [("train_loss", loss), ("val_loss" if has_val else "test_loss",
                                         f"{'validation' if has_val else 'test'} loss ({loss_name(levels)})"),
                  ("test_acc", "test accuracy"), *([("val_acc", "validation accuracy")] if has_val else [])]
    from matplotlib.ticker import MaxNLocator

    fig = Figure("curves", "Training curves", f"Mean over seeds (line) and {BANDS[band]} (band), per level; "
                 "diverged trials are left out and listed below. MSE, R² and accuracy are in the data's "
                 "original units.")
    for key, name in panels:
        f, ax = _panel(name)
        vals_all = []
        for lv, color in zip(levels, colors):
            done = _finished(lv)
            if done:
                n = min(len(e) for e in done)
                vals = [[e[key] for e in eps[:n]] for eps in done]
                vals_all += [v for row in vals for v in row]
                _band(ax, [e["epoch"] for e in done[0][:n]], vals, color, band,
                      bounds=(0.0, 1.0) if key.endswith("_acc") else (-math.inf, 1.0) if key.endswith("_r2") else None)
        ax.set_xlabel("epoch")
        epochs = sorted({e["epoch"] for lv in levels for eps in _finished(lv) for e in eps})
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ("loss" in key or "mse" in key) and _spans_decades(vals_all):
            log_axis(ax, "y", vals_all)
        fig.panels.append((key.replace("_", "-"), f))
    return fig


def _vs_factor(levels, colors, units) -> list[Figure]:
    factors = list(levels[0].level) if levels else []
    second = ("test_mse", "final test MSE") if is_regression(levels) else ("test_acc", "final test accuracy")
    loss = f"final train loss ({loss_name(levels)}" + (f"; {units})" if units else ")")
    figs = []
    # against each factor (numeric: a log axis when spanning decades; categories: the levels
    # sharing a value spread a little); with several factors, also one point per level
    for f in factors + ([None] if len(factors) > 1 else []):
        values = [lv.level[f] for lv in levels] if f else [None] * len(levels)
        numeric = f is not None and all(not isinstance(v, bool) and value_number(v) is not None for v in values)
        cats = list(dict.fromkeys(json.dumps(v, default=str) for v in values)) if f else []
        group = Figure(f"final-vs-{f}".replace(".", "-") if f else "final-by-level",
                       f"Final metrics against {f}" if f else "Final metrics per level (numbered as in the legend)",
                       "Each seed (dots), the mean and its min–max range (diamond and bars).")
        for key, name in (("train_loss", loss), second):
            fig, ax = _panel(name)
            xs = []
            for i, (lv, color) in enumerate(zip(levels, colors)):
                if numeric:
                    x = value_number(lv.level[f])
                elif f:
                    c = json.dumps(lv.level[f], default=str)
                    same = [j for j, v in enumerate(values) if json.dumps(v, default=str) == c]
                    x = cats.index(c) + (same.index(i) - (len(same) - 1) / 2) * min(0.12, 0.7 / len(same))
                else:
                    x = i + 1
                xs.append(x)
                finals = [eps[-1][key] for eps in _finished(lv)]
                if finals:
                    m = float(np.mean(finals))
                    ax.scatter([x] * len(finals), finals, color=color, alpha=0.5, s=14)
                    ax.errorbar([x], [m], yerr=[[max(0.0, m - min(finals))], [max(0.0, max(finals) - m)]],
                                fmt="D", color=color, capsize=4, ms=6)
                if lv.n_diverged:
                    ax.annotate(f"{lv.n_diverged} diverged", (x, 0.02), xycoords=("data", "axes fraction"),
                                color="crimson", ha="center", fontsize=8)
            if numeric and _spans_decades(xs):
                log_axis(ax, "x", xs)
                ax.set_xticks(sorted(set(xs)))
                ax.set_xticklabels([value_label(values[xs.index(x)]) for x in sorted(set(xs))])
                ax.minorticks_off()
            elif f and not numeric:
                ax.set_xticks(range(len(cats)))
                ax.set_xticklabels([value_label(json.loads(c)) for c in cats], rotation=20 if len(cats) > 3 else 0)
            elif not f:
                ax.set_xticks(xs)
            if key in ("train_loss", "test_mse"):
                ys = [eps[-1][key] for lv in levels for eps in _finished(lv)]
                if _spans_decades(ys):
                    log_axis(ax, "y", ys)
            ax.set_xlabel(f or "level")
            group.panels.append((key.replace("_", "-"), fig))
        figs.append(group)
    return figs


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
    (Hessian.name, Hessian.MAX_EIGENVALUE, "largest Hessian eigenvalue", True),
]


def _probe_figure(levels, colors, band) -> Figure | None:
    present = [p for p in PROBE_PANELS
               if any(r[1] == p[0] and r[2] == p[1] for lv in levels for rec in lv.trials for r in rec.probes)]
    if not present:
        return None
    group = Figure("probes", "Inside training: probes over steps",
                   f"Mean over seeds and {BANDS[band]}, per level, at the probed steps (log-spaced).")
    for probe, name, title, log_y in present:
        fig, ax = _panel(title)
        for lv, color in zip(levels, colors):
            series = {}
            for k, rec in enumerate(lv.trials):
                if rec.status == "diverged":  # listed under "Diverged trials", not averaged in
                    continue
                for step, p, n, v in rec.probes:
                    if p == probe and n == name:
                        series.setdefault(step, {})[k] = np.nan if v is None else v
            if series:
                steps = sorted(series)
                seeds = sorted({k for d in series.values() for k in d})
                _band(ax, np.asarray(steps) + 1, [[series[s].get(k, np.nan) for s in steps] for k in seeds],
                      color, band)
        log_axis(ax, "x", [1, 100])   # probed steps: plain-number labels on the log axis
        ax.set_xlabel("step + 1")
        if log_y:
            # symlog: values spanning decades stay readable and exact zeros (a stopped
            # gradient) stay visible, which a log axis would drop
            ys = np.concatenate([ln.get_ydata() for ln in ax.get_lines()]) if ax.get_lines() else np.array([])
            pos = ys[np.isfinite(ys) & (ys > 0)]
            if len(pos) and _spans_decades(pos):
                from matplotlib.ticker import FuncFormatter

                ax.set_yscale("symlog", linthresh=float(max(np.min(pos), np.max(pos) * 1e-5)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.set_ylim(bottom=0)
        group.panels.append((name.replace(".", "-").replace("_", "-"), fig))
    return group


def level_colors(n: int) -> list[str]:
    """One colour per level, the same in every figure (tab10, then tab20 for more levels)."""
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [to_hex(cmap(i % cmap.N)) for i in range(n)]


def build_figures(levels: list[LevelRecord], descriptions: dict | None = None, band: str = "std") -> list[Figure]:
    """Every figure of a study's levels (see :func:`scalelab._levels.read_levels`).

    >>> figs = build_figures(read_levels(store, "input-scaling"))   # in Jupyter, a Figure shows inline
    """
    if band not in BANDS:
        raise ValueError(f"band {band!r}: choose one of {', '.join(BANDS)}")
    colors = level_colors(len(levels))
    units = loss_units(levels)
    figs = [_curves(levels, colors, band, units), *_vs_factor(levels, colors, units)]
    pf = _probe_figure(levels, colors, band)
    figs += [pf] if pf is not None else []
    from ..trajectories._figures import trajectory_figures   # a trajectory study's samples and calibration

    figs += [Figure(name, title, caption, panels) for name, title, caption, panels in trajectory_figures(levels, colors)]
    legend = [(f"{i + 1}. {lv.label}", level_description(lv.level, descriptions), c)
              for i, (lv, c) in enumerate(zip(levels, colors))]
    for f in figs:
        f.legend = legend
    return figs


def figures(store, study: str, band: str = "std") -> list[Figure]:
    """The report's figures of a stored study; in Jupyter each shows inline (SVG panels and legend).

    >>> figs = scalelab.figures(scalelab.Store("scalelab.db"), "input-scaling")
    >>> figs[0]                   # training curves
    >>> figs[0].save("figures")   # each panel as PNG and SVG
    """
    from .._store._levels import read_levels

    descriptions = store.require_study(study)["spec"].get("descriptions", {})
    return build_figures(read_levels(store, study), descriptions, band)
