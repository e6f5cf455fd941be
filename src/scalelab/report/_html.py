"""One self-contained HTML report per study. It opens with the answer: one sentence per
level computed from the run (the numbers behind it in a ``<details>``), then the question,
the results table, the findings, the figures (inline SVG panels from :mod:`._figures`,
one legend of the levels outside the data), diverged trials, the spec as a diff from the
defaults and the environment. No scripts, no network: the file opens offline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .._explain import explain_views, level_views
from .._explain._cv_view import is_cv_study
from ._answers import answer_views
from ._css import CSS
from ._figures import BANDS, build_figures, figure_html, loss_units
from .._format import fmt, level_description, level_label
from .._store._levels import read_levels
from ._summary import NAMES, ci_metric, factor_cells, metric_cells, shown_metrics, summarize_levels
from .._store import Store
from .._verify_read import stored_verification, with_verification
from .._verify_stats import effect_text


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k not in ("grid", "arms", "descriptions"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def spec_diff(spec: dict) -> list[tuple[str, object, object]]:
    """(key, value, default) for each spec key the study sets away from the defaults of its profile."""
    from .._spec import StudySpec

    default = _flat(StudySpec.model_validate({"name": spec["name"], "profile": spec.get("profile", "keras")})
                    .model_dump())
    skip = {"name", "question", "descriptions", "grid", "arms"}
    return [(k, v, default.get(k)) for k, v in _flat(spec).items()
            if k not in skip and json.dumps(v, default=str) != json.dumps(default.get(k), default=str)]


def _answers_html(answers, records, metrics) -> str:
    """The answer sentences; under each, the level's numbers and findings one click away."""
    e = html.escape
    parts = ["<section class='answers' data-role='answers'>"]
    by_level = {json.dumps(r["level"], sort_keys=True, default=str): r for r in records}
    for a in answers:
        r = by_level[json.dumps(a.level, sort_keys=True, default=str)]
        nums = ", ".join(f"{NAMES[m]} {fmt(r[m]['mean'])} ± {fmt(r[m]['std'], 2)}" for m in metrics)
        found = "".join(f"<li><span class='id'>{e(f.id)}</span> <small>({e(f.role)})</small> {e(f.text)}</li>"
                        for f in a.findings)
        parts.append(f"<p class='answer{' best' if a.best else ''}' data-role='answer'>{e(a.text)}</p>"
                     f"<details><summary>numbers behind it</summary><p class='num'>{e(a.label)}: "
                     f"{r['n_seeds']} seeds; {e(nums)} (mean ± std over seeds); {e(a.metric)} "
                     f"{fmt(a.value)} here, {fmt(a.best_value)} at the best level.</p>"
                     + (f"<ul class='num'>{found}</ul>" if found else "") + "</details>")
    return "".join(parts) + "</section>"


def _verified_html(f) -> str:
    """A verified cause's measured remedy beside it: before → after with the seed spread."""
    v = f.verified
    if v is None:
        return ""
    verdict = "verified" if v["helps"] else "did not help: demoted to a note"
    return (f"<div class='verified{'' if v['helps'] else ' bad'}' data-role='verified'><b>{verdict}</b>: "
            f"{html.escape(effect_text(v))}</div>")


def render_html(store: Store, study: str, png_dir: str | Path | None = None, band: str = "std") -> str:
    """The report as one HTML string; with ``png_dir``, each figure's panels are also
    written there as PNG and SVG (see :meth:`Figure.save`)."""
    info = store.require_study(study)
    spec = info["spec"]
    descriptions = spec.get("descriptions", {})
    levels = read_levels(store, study)   # read once, for the figures, the table and the findings
    records = summarize_levels(levels)
    figs = build_figures(levels, descriptions, band)
    if png_dir is not None:
        for f in figs:
            f.save(png_dir)
    body_figs = [figure_html(f) for f in figs]
    views = level_views(levels)
    findings = with_verification(explain_views(views), stored_verification(store, study))   # scalelab verify
    answers = answer_views(views, findings, descriptions)
    e = html.escape
    trials = [r.trial for lv in levels for r in lv.trials]
    env = trials[0]["env"] if trials else {}
    wall = sum(t["wall_s"] or 0 for t in trials)
    factors = list(levels[0].level) if levels else []
    metrics, ci = shown_metrics(records), ci_metric(records)
    units = loss_units(levels)

    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>scalelab — {e(study)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(study)}</h1>", _answers_html(answers, records, metrics)]
    if spec.get("question"):
        parts.append(f"<p class='q'><b>Question.</b> {e(spec['question'])}</p>")
    n_div = sum(t["status"] == "diverged" for t in trials)
    parts.append(f"<p>{len(trials)} trials: {len(levels)} levels × seeds {e(str(spec.get('seeds')))}"
                 f", profile <b>{e(str(spec.get('profile')))}</b>"
                 + (f", <span class='bad'>{n_div} diverged</span>" if n_div else "") + ".</p>")

    # results table: the first column (the level) stays in view while the table scrolls sideways
    parts.append("<h2>Results</h2><div class='scroll'><table data-role='results'><thead><tr>")
    head = [*(factors or ["level"]), "seeds", "diverged", *(NAMES[m] for m in metrics), f"{NAMES[ci]} 95% CI",
            "description"]
    parts.append("".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for r in records:
        cells = [*factor_cells(r, factors), str(r["n_seeds"]), str(r["n_diverged"]), *metric_cells(r, metrics, ci)]
        cls = " class='bad'" if r["n_diverged"] else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td data-label='{e(h)}'>{e(c)}</td>" for h, c in zip(head, cells))
                     + f"<td class='desc'>{e(level_description(r['level'], descriptions))}</td></tr>")
    parts.append("</tbody></table></div><p><small>mean ± sample std over seeds that finished; the CI is the "
                 "t-interval of the mean" + (f"; the train loss is in {e(units)} units, test RMSE and R² in the "
                                              "original units" if units else "") + ".</small></p>")

    parts.append("<h2>Findings</h2>")
    if findings:
        parts.append("<ul data-role='findings'>" + "".join(
            f"<li><span class='id'>{e(f.id)}</span> {e(f.text)}{_verified_html(f)}</li>" for f in findings) + "</ul>")
    else:
        parts.append("<p>No findings. Most rules read probe records: run with <code>--probes standard</code> to "
                     "record them.</p>")
    parts.append("<h2>Figures</h2>" + "".join(body_figs))

    div = [t for t in trials if t["status"] == "diverged"]
    if div:
        parts.append("<h2>Diverged trials</h2><ul>" + "".join(
            f"<li class='bad'>{e(level_label(t['level']))}, seed {t['seed']}: loss not finite from step "
            f"{t['diverged_step']}</li>" for t in div) + "</ul>")

    # the spec: what it varies, then a diff from the defaults; the resolved spec one click further
    varied = {k: spec[k] for k in ("seeds", "grid", "arms") if spec.get(k)}
    diff = spec_diff(spec)
    parts.append("<h2>Spec</h2><details data-role='spec'><summary>the study varies "
                 + e(", ".join(k for k in varied)) + f"; {len(diff)} keys differ from the defaults</summary><pre>"
                 + e(json.dumps(varied, indent=2, default=str)) + "</pre><div class='scroll'><table data-role='spec'>"
                 "<tr><th>key</th><th>value</th><th>default</th></tr>" + "".join(
                     f"<tr><td>{e(k)}</td><td>{e(json.dumps(v, default=str))}</td>"
                     f"<td>{e(json.dumps(d, default=str))}</td></tr>" for k, v, d in diff)
                 + "</table></div><details><summary>resolved spec of the first trial (profile defaults filled "
                 "in)</summary><pre>" + e(json.dumps(trials[0]["spec"] if trials else spec, indent=2, default=str))
                 + "</pre></details></details>")
    parts.append("<h2>Environment</h2><div class='scroll'><table data-role='environment'>" + "".join(
        f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in env.items())
        + f"<tr><td>training wall time (sum over trials' shares)</td><td>{wall:.1f} s</td></tr></table></div>")
    parts.append("<p><small>Written by scalelab; this file is self-contained (no network).</small></p></body></html>")
    return "\n".join(parts)


def write_report(store: Store, study: str, out: str | Path, png_dir: str | Path | None = None,
                 band: str = "std") -> Path:
    """Write the HTML report of a stored study to ``out`` (atomically) and return its path.

    ``band``: the band around each mean curve, one of std (default), ci, minmax, none.

    >>> scalelab.write_report(scalelab.Store("scalelab.db"), "input-scaling", "report.html")
    """
    if band not in BANDS:
        raise ValueError(f"--band {band}: choose one of {', '.join(BANDS)}")
    if is_cv_study(store, study):   # a cross-validated study has its own report (arms × seeds × splits)
        from ._cv_html import write_cv_report

        return write_cv_report(store, study, out, png_dir)
    out = Path(out)
    if out.is_dir():   # refused before anything is written (no OUT.part left behind)
        raise ValueError(f"report output {out} is a folder; give a file name, e.g. -o {out / (study + '.html')}")
    if png_dir is not None and Path(png_dir).exists() and not Path(png_dir).is_dir():
        raise ValueError(f"--png {png_dir} is a file; give a folder for the figures")
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(store, study, png_dir, band)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
