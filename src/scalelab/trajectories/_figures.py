"""The trajectory study's own figures, drawn from what the heads stored after the last
epoch: (1) a few test samples per model — the observed path, the true branches (their
width the branch's probability), the predicted occupancy heatmap (mean cell mass over the
future steps), the K sampled futures and the best single prediction; (2) calibration — the
predicted branch mass against the true probability, per junction type and branch.

Returns (name, title, caption, panels) tuples; :mod:`scalelab.report._figures` wraps them as figures
with the study's level legend (kept apart so the two modules do not import each other)."""

from __future__ import annotations

import json

import numpy as np

PANEL = (4.2, 3.6)


def _panel(title: str):
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=PANEL, layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, fontsize=9)
    return fig, ax


def _finals(lv) -> list[dict]:
    return [r.epochs[-1] for r in lv.trials if r.status == "done" and r.epochs]


def is_trajectory_study(levels) -> bool:
    return bool(levels) and any("test_branch_abs_error" in f or "test_ade" in f for lv in levels for f in _finals(lv))


def _shown_levels(levels) -> list:
    """One level per model: the standardized arm where the study has one, else every level."""
    std = [lv for lv in levels if lv.level.get("arm") == "standardized"]
    return std or levels


def _test_set(trial: dict):
    from .._spec import TrialSpec
    from ..data import trial_split

    spec = TrialSpec.model_validate_json(json.dumps(trial["spec"]))
    ds, sp = trial_split(spec)
    return spec, ds, sp


def sample_panels(levels, colors, most_samples: int = 3) -> list:
    shown = _shown_levels(levels)
    if not shown or not _finals(shown[0]):
        return []
    spec, ds, sp = _test_set(shown[0].trials[0].trial)
    tr, meta = spec.trajectory, ds.meta.get("trajectory", {})
    lo, hi = meta["map"].coord_range if meta.get("map") is not None else tr.coord_range
    G = tr.grid_size
    info = meta.get("test") or {}
    tmap = meta.get("map")
    panels = []
    for i in range(most_samples):
        for lv in shown:
            finals = _finals(lv)
            if not finals or f"test_show.{i}.row" not in finals[0]:
                continue
            f = finals[0]                                       # the first finished seed
            row = int(f[f"test_show.{i}.row"])
            color = colors[levels.index(lv)]
            name = lv.level.get("loss.name", lv.label)
            fig, ax = _panel(f"sample {i + 1}: {name}")
            heat = np.array([f.get(f"test_show.{i}.heat.{c}", np.nan) for c in range(G * G)]).reshape(G, G)
            ax.imshow(heat, origin="lower", extent=(lo, hi, lo, hi), cmap="Greys", vmin=0,
                      vmax=max(np.nanmax(heat), 1e-12), interpolation="nearest")
            obs = sp.X_test[row].reshape(-1, 2)
            if "branch_futures" in info:
                fut = info["branch_futures"][row]               # (3, T, 2)
                probs = info["probs"][row]
                for b in range(3):
                    if probs[b] > 0:
                        path = np.vstack([obs[-1:], fut[b]])
                        ax.plot(path[:, 0], path[:, 1], color="tab:green", lw=1 + 5 * probs[b], alpha=0.45)
            T = tr.n_future
            k = 0
            while f"test_show.{i}.sample.{k}.0.0" in f:
                s = np.array([[f[f"test_show.{i}.sample.{k}.{t}.{a}"] for a in range(2)] for t in range(T)])
                ax.plot(s[:, 0], s[:, 1], color=color, lw=0.7, alpha=0.5)
                k += 1
            p = np.array([[f[f"test_show.{i}.point.{t}.{a}"] for a in range(2)] for t in range(T)])
            ax.plot(obs[:, 0], obs[:, 1], "k.-", lw=1.2, ms=3)
            ax.plot(p[:, 0], p[:, 1], color=color, lw=2.2, marker="o", ms=3)
            true_f = sp.y_test[row].reshape(-1, 2)
            ax.plot(true_f[:, 0], true_f[:, 1], "r+", ms=6)
            c = obs[-1]
            half = 0.3 * (hi - lo)        # 30 units of the generator's 100-unit box; a file's box likewise
            ax.set_xlim(c[0] - half, c[0] + half)
            ax.set_ylim(c[1] - half, c[1] + half)
            ax.set_aspect("equal")
            if tmap is not None and meta.get("generated"):
                jt = tmap.junction_types[tmap.locate(obs[None])["type"][0]]
                ax.set_xlabel(f"{jt} junction; {k} samples", fontsize=8)
            else:
                ax.set_xlabel(f"test track {row}; {k} samples", fontsize=8)
            panels.append((f"s{i}-{lv.label}".replace(" ", "").replace(",", "-").replace("=", "_"), fig))
    return panels


def calibration_panels(levels, colors) -> list:
    fig, ax = _panel("predicted vs true branch mass")
    any_point = False
    for lv, color in zip(levels, colors):
        finals = _finals(lv)
        keys = sorted(k for k in (finals[0] if finals else {}) if k.startswith("test_branch_mass."))
        if not keys:
            continue
        true = [float(finals[0].get(k.replace("branch_mass", "true_mass"), np.nan)) for k in keys]
        pred = np.array([[f.get(k, np.nan) for k in keys] for f in finals])
        ax.errorbar(true, np.nanmean(pred, 0), yerr=np.nanstd(pred, 0) if len(pred) > 1 else None, fmt="o",
                    color=color, ms=4, alpha=0.8, capsize=2)
        any_point = True
    if not any_point:
        return []
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.fill_between([0, 1], [-0.05, 0.95], [0.05, 1.05], color="grey", alpha=0.12, lw=0)
    ax.set_xlabel("true branch probability (junction type × branch)", fontsize=8)
    ax.set_ylabel("mean predicted branch mass", fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    fig2, ax2 = _panel("largest branch-mass error per level")
    errs = [[f.get("test_branch_abs_error", np.nan) for f in _finals(lv)] for lv in levels]
    for i, (e, color) in enumerate(zip(errs, colors)):
        if e:
            ax2.scatter([i + 1] * len(e), e, color=color, s=14, alpha=0.6)
            ax2.plot([i + 1], [np.nanmean(e)], marker="D", color=color, ms=6)
    ax2.axhline(0.05, color="grey", ls="--", lw=1)
    ax2.set_xlabel("level (numbered as in the legend)", fontsize=8)
    ax2.set_yscale("log")
    ax2.grid(alpha=0.3)
    return [("calibration", fig), ("branch-error", fig2)]


def trajectory_figures(levels, colors) -> list[tuple]:
    if not is_trajectory_study(levels):
        return []
    out = []
    samples = sample_panels(levels, colors)
    if samples:
        out.append(("trajectory-samples", "Test samples per model",
                    "Observed path (black), true branches (green, width = probability), true future (red +), the "
                    "model's occupancy heatmap (grey: mean cell mass over the future steps), its sampled futures "
                    "(thin) and best single prediction (thick); first seed, standardized coordinates where swept.",
                    samples))
    cal = calibration_panels(levels, colors)
    if cal:
        out.append(("branch-calibration", "Branch calibration",
                    "Mean predicted mass of each branch (left, straight, right) per junction type against the "
                    "generator's probability, mean ± std over seeds; the band is ±0.05. Right: each level's "
                    "largest error (dots: seeds; diamond: mean; dashed: 0.05).", cal))
    return out
