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

from ._explain import answer_views, explain_views, level_views
from ._figures import BANDS, Figure, build_figures, loss_units
from ._format import fmt, level_description, level_label
from ._store._levels import read_levels
from ._report import NAMES, ci_metric, factor_cells, metric_cells, shown_metrics, summarize_levels
from ._store import Store


CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem;
color:#1d1d1f;line-height:1.45;overflow-wrap:anywhere}
h1{font-size:1.5rem;margin-bottom:.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.answers{margin:.2rem 0 1rem}.answer{margin:.5rem 0 .2rem;font-size:1.05rem}.answer.best{font-weight:600}
details{margin:.1rem 0 .6rem}summary{cursor:pointer;color:#4c78a8;font-size:.85rem}
details .num{font-size:.85rem;color:#333}
.q{color:#333;background:#f5f7fa;padding:.6rem .8rem;border-left:4px solid #4c78a8}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .55rem;border-bottom:1px solid #e3e3e3;text-align:right;overflow-wrap:normal}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff;z-index:1;
box-shadow:1px 0 0 #e3e3e3}
td.desc,th:last-child{white-space:normal;min-width:12rem;text-align:left;color:#555}
figure{margin:1rem 0}.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.5rem}
.panels svg{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.2rem 1rem;list-style:none;padding:0;margin:.3rem 0;font-size:.85rem}
.legend li{margin:0}.sw{display:inline-block;width:.9rem;height:.9rem;border-radius:2px;vertical-align:-.1rem;
margin-right:.3rem}.legend small{color:#555}
figcaption{font-size:.85rem;color:#555}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.8rem}
li{margin:.35rem 0}.id{font-family:monospace;background:#eef;padding:0 .25rem}.bad{color:#b00020}
table[data-role=environment] td,table[data-role=spec] td{overflow-wrap:anywhere;text-align:left}
@media (max-width:600px){body{padding:.5rem}h1{font-size:1.2rem}.panels{grid-template-columns:1fr}
table[data-role=results],table[data-role=results] tbody,table[data-role=results] tr,table[data-role=results] td{
display:block;width:100%}table[data-role=results] thead{display:none}
table[data-role=results] tr{border-bottom:2px solid #ccc;padding:.3rem 0}
table[data-role=results] td{text-align:left;position:static;box-shadow:none;border:0;padding:.1rem .3rem;min-width:0}
table[data-role=results] td[data-label]::before{content:attr(data-label) ": ";color:#555}}
"""


def figure_html(f: Figure) -> str:
    """One figure group: its title, the level legend (outside every panel), the panels, the caption."""
    e = html.escape
    legend = "".join(f"<li><span class='sw' style='background:{c}'></span>{e(label)}"
                     + (f" <small>{e(desc)}</small>" if desc else "") + "</li>" for label, desc, c in f.legend)
    return (f"<figure data-plot='{e(f.name)}'><figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption>"
            f"<ul class='legend' data-role='legend'>{legend}</ul><div class='panels'>{''.join(f.svgs())}</div>"
            "</figure>")


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
    from ._spec import StudySpec

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
    findings = explain_views(views)
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
            f"<li><span class='id'>{e(f.id)}</span> {e(f.text)}</li>" for f in findings) + "</ul>")
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
    from .evaluation._summary import is_cv_study

    if is_cv_study(store, study):   # a cross-validated study has its own report (arms × seeds × splits)
        from .evaluation._report import write_cv_report

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
