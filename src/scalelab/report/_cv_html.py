"""The HTML report of a cross-validated study: the answer first, then the question, the table
per arm (mean, std across seeds and splits, range, 95% CI, the hyperparameter chosen on each
outer fold, the one test score), the findings, the per-run dot figure and the test note."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ._figures import Figure, _panel, figure_html, level_colors
from .._format import pct
from .._explain._cv import cv_findings
from .._explain._cv_view import arm_summaries, bayes, setting
from .._spec._cv import SELECT_LABEL
from ._answers import answer
from ._css import CSS
from ._cv import STD_WORDS, TEST_NOTE, test_cell


def dots_figure(arms, bayes_acc: float | None = None) -> Figure:
    """Validation accuracy of every run, one dot each, one column per arm (jittered; colour:
    the split), the arm's mean as a bar; the spread a user sees between reruns is the height
    of a column."""
    fig, ax = _panel("validation accuracy of every run", width=max(1.0, len(arms) / 4))
    n_splits = max(a.table.shape[1] for a in arms)
    colors = level_colors(n_splits)
    rng = np.random.default_rng(0)
    for i, a in enumerate(arms):
        for k in range(a.table.shape[1]):
            col = a.table[:, k]
            ax.scatter(i + (k - (a.table.shape[1] - 1) / 2) * 0.12 + rng.uniform(-0.03, 0.03, len(col)), col,
                       s=9, color=colors[k % len(colors)], alpha=0.75, lw=0)
        m = a.decomposition["mean"]
        ax.plot([i - 0.4, i + 0.4], [m, m], color="black", lw=1.5)
    if bayes_acc is not None:
        ax.axhline(bayes_acc, color="#b00020", lw=1, ls="--")
        ax.text(len(arms) - 0.5, bayes_acc, " Bayes", color="#b00020", fontsize=7, va="bottom", ha="right")
    ax.set_xticks(range(len(arms)), [a.name for a in arms], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("validation accuracy (outer fold)")
    f = Figure("runs", "Every run", "one dot per seed × split (colour: the split; a deterministic estimator has one "
               "dot per split); the black bar is the arm's mean" + ("; dashed: the Bayes accuracy" if bayes_acc else ""),
               panels=[("dots", fig)])
    f.legend = [(f"repeat {r} fold {fo}", "", c) for (r, fo), c in zip(arms[0].splits, colors)]
    return f


def render_cv_html(store, study: str, png_dir=None) -> str:
    spec, arms = arm_summaries(store, study)
    e = html.escape
    b = bayes(spec)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
             f"content='width=device-width, initial-scale=1'><title>scalelab — {e(study)}</title><style>{CSS}</style>"
             f"</head><body><h1>{e(study)}</h1>",
             f"<section class='answers' data-role='answers'><p class='answer best' data-role='answer'>"
             f"{e(answer(spec, arms))}</p></section>"]
    if spec.get("question"):
        parts.append(f"<p class='q'><b>Question.</b> {e(spec['question'])}</p>")
    cv = spec.get("cv") or {}
    parts.append(f"<p>{e(setting(spec))}; {cv.get('repeats', 1)} repeat(s) of stratified {cv.get('folds', 5)}-fold "
                 f"cross-validation × {len(list(range(spec['seeds'])) if isinstance(spec['seeds'], int) else spec['seeds'])}"
                 f" seeds; hyperparameters chosen on {cv.get('inner_folds', 4)} inner folds of each outer training "
                 f"set" + (f"; Bayes accuracy {100 * b:.1f}%" if b is not None else "") + ".</p>")
    head = ("arm", "runs", "mean", "std across seeds", "std across splits", "std all runs", "range", "95% CI",
            "seed share", "chosen per outer fold", "test ± std across seeds", "description")
    parts.append("<h2>Arms</h2><div class='scroll'><table data-role='results'><thead><tr>" + "".join(
        f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>")
    for a in arms:
        d = a.decomposition
        ch = (f"{SELECT_LABEL[a.select]}: " + ", ".join(f"{v:g}" for _, v in sorted(a.chosen.items()))) if a.select else "—"
        test = (test_cell(a) + (f" ({SELECT_LABEL[a.select]} = {a.test_chosen:g})" if a.select else "")
                if a.test_acc else "—")
        cells = [a.name, f"{d['n_seeds']} × {d['n_splits']}", f"{d['mean']:.3f}", f"{d['std_seeds']:.3f}",
                 f"{d['std_splits']:.3f}", f"{d['std_total']:.3f}", f"{d['min']:.3f}–{d['max']:.3f}", f"[{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]",
                 pct(d["seed_share"]) if np.isfinite(d["seed_share"]) else "—", ch, test]
        parts.append("<tr>" + "".join(f"<td data-label='{e(h)}'>{e(c)}</td>" for h, c in zip(head, cells))
                     + f"<td class='desc'>{e(a.description)}</td></tr>")
    parts.append("</tbody></table></div><p><small>Validation accuracy on the outer folds; " + e(STD_WORDS)
                 + ". Seed share: σ²(seed, at a fixed split) / (that + σ²(split)). The 95% CI of the mean counts both "
                 "sources; folds of one repeat share training rows, so it is somewhat optimistic.</small></p>")
    parts.append(f"<p data-role='test-note'><b>Test set.</b> {e(TEST_NOTE)}</p>")
    findings = cv_findings(arms)
    parts.append("<h2>Findings</h2><ul data-role='findings'>" + "".join(
        f"<li><span class='id'>{e(f.id)}</span> {e(f.text)}</li>" for f in findings) + "</ul>")
    fig = dots_figure(arms, b)
    if png_dir is not None:
        fig.save(png_dir)
    parts.append("<h2>Figures</h2>" + figure_html(fig))
    parts.append("<h2>Spec</h2><details data-role='spec'><summary>the study's spec</summary><pre>"
                 + e(json.dumps(spec, indent=2, default=str)) + "</pre></details>")
    trials = store.trials(store.require_study(study)["id"])
    env = trials[0]["env"] if trials else {}
    parts.append("<h2>Environment</h2><div class='scroll'><table data-role='environment'>" + "".join(
        f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in env.items())
        + f"<tr><td>training wall time (sum over trials)</td><td>{sum(t['wall_s'] or 0 for t in trials):.1f} s</td>"
        "</tr></table></div><p><small>Written by scalelab; this file is self-contained (no network).</small></p>"
        "</body></html>")
    return "\n".join(parts)


def write_cv_report(store, study: str, out, png_dir=None) -> Path:
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"report output {out} is a folder; give a file name, e.g. -o {out / (study + '.html')}")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_cv_html(store, study, png_dir)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
