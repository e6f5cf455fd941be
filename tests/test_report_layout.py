"""The report of every built-in study, rendered by headless Chromium on a phone (390 px)
and a laptop (1280 px): the page never scrolls sideways, every legend sits outside every
plot area, and the first text after the title is the answer sentence computed from the run."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser import Chromium, find_chromium
from builtin_stores import all_builtin_stores
from conftest import write_fashion_like
from scalelab import Store
from scalelab.report._answers import answers

requires_chromium = pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"),
                                       reason="Chromium not installed (make test installs Debian's chromium)")

MEASURE = """(() => {
  const overlap = (a, b) => Math.max(0, Math.min(a.r, b.r) - Math.max(a.l, b.l)) * Math.max(0, Math.min(a.b, b.b) - Math.max(a.t, b.t));
  const rect = e => { const r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom}; };
  // a matplotlib axes is <g id="...axes_N">; its first child is the plot area's background patch
  const plots = [...document.querySelectorAll('svg g[id*="axes_"]')].filter(g => /axes_\\d+$/.test(g.id))
      .map(g => rect(g.firstElementChild));
  const legends = [...document.querySelectorAll('[data-role=legend], svg g[id*="legend_"]')].map(e => ({
      box: rect(e), fig: rect(e.closest('figure'))}));
  const first = [...document.body.children].find(e => e.tagName !== 'H1' && e.offsetHeight > 0
      && e.innerText.trim());
  const panels = [...document.querySelectorAll('svg[data-panel]')].map(s => s.getBoundingClientRect().width);
  // a table wider than the window is cut off (its box scrolls, but the reader sees half a row)
  const tables = [...document.querySelectorAll('table')].map(t => ({role: t.dataset.role || '',
      width: Math.max(t.getBoundingClientRect().width, t.scrollWidth)}));
  // tick labels of one axis that touch each other
  const touching = [];
  for (const axis of document.querySelectorAll('svg g[id*="matplotlib.axis_"]')) {
    const texts = [...axis.querySelectorAll('g[id*="tick_"] text')];
    const boxes = texts.map(rect);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++)
      if (overlap(boxes[i], boxes[j]) > 1) touching.push(`${axis.id}: '${texts[i].textContent}' and '${texts[j].textContent}'`);
  }
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, plots, legends, panels, tables, touching,
          first: first && first.querySelector('p') ? first.querySelector('p').innerText : null};
})()"""


def overlap(a, b) -> float:
    return max(0, min(a["r"], b["r"]) - max(a["l"], b["l"])) * max(0, min(a["b"], b["b"]) - max(a["t"], b["t"]))


@pytest.fixture(scope="module")
def builtin_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("builtin")
    db = tmp / "all.db"
    return db, all_builtin_stores(db, write_fashion_like(tmp / "fmnist"))


@pytest.fixture(scope="module")
def reading(builtin_db):
    """ls, show, trials, explain (text and JSON), report and export of every built-in study
    (grid, cross-validated, trajectory, embedding) in one fresh process, which also writes the
    reports the layout tests read (``<study>.html`` beside the store)."""
    db, names = builtin_db
    out = str(db.parent)
    code = f"""
import contextlib, io, sys
from scalelab._cli import main
calls = [["ls", "--db", {str(db)!r}]]
for n in {names!r}:
    calls += [[c, n, "--db", {str(db)!r}] for c in ("show", "trials", "explain")]
    calls += [["explain", n, "--format", "json", "--db", {str(db)!r}],
              ["report", n, "-o", {out!r} + f"/{{n}}.html", "--db", {str(db)!r}],
              ["export", n, "-o", {out!r} + f"/{{n}}.csv", "--db", {str(db)!r}]]
for args in calls:
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    assert not rc, (args, rc)
    assert "torch" not in sys.modules, args
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})


@pytest.fixture(scope="module")
def reports(builtin_db, reading):
    assert reading.returncode == 0, reading.stderr[-3000:]
    db, names = builtin_db
    store = Store(db)
    return {n: (db.parent / f"{n}.html", answers(store, n)[0]) for n in names}


def test_reading_commands_do_not_import_torch(builtin_db, reading):
    """Every reading command of every built-in study ran in one process (``reading``): torch never loaded."""
    db, names = builtin_db
    assert reading.returncode == 0, reading.stderr[-3000:]
    assert all((db.parent / f"{n}.html").exists() and (db.parent / f"{n}.csv").exists() for n in names)


@requires_chromium
def test_every_builtin_report_reads_on_a_phone_and_a_laptop(reports):
    shots = os.environ.get("SCALELAB_SCREENSHOT_DIR")
    b = Chromium()
    try:
        session = b.open_page()
        for width in (390, 1280):
            b.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                           "mobile": width < 600}, session=session)
            for name, (path, ans) in reports.items():
                b.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
                b.wait_for("Page.loadEventFired")
                m = b.send("Runtime.evaluate", {"returnByValue": True, "expression": MEASURE},
                           session=session)["result"]["value"]
                where = f"{name} at {width} px"
                assert m["inner"] == width and m["scroll"] <= width, f"{where}: the page scrolls sideways {m['scroll']}"
                assert m["plots"] and m["legends"], where
                wide = [t for t in m["tables"] if t["width"] > width]
                assert not wide, f"{where}: tables wider than the window {wide}"
                assert not m["touching"], f"{where}: tick labels overlap: {m['touching'][:3]}"
                for lg in m["legends"]:
                    assert all(overlap(lg["box"], p) < 1 for p in m["plots"]), f"{where}: a legend covers a plot"
                    assert lg["fig"]["l"] - 1 <= lg["box"]["l"] and lg["box"]["r"] <= lg["fig"]["r"] + 1, where
                # readable panels: at least 300 px wide, one per row on a phone
                assert min(m["panels"]) >= (0.9 * (width - 20) if width < 600 else 300), (where, m["panels"])
                assert m["first"] == ans[0].text, where
                if shots:
                    shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                  session=session)
                    Path(shots, f"report-{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        b.close()


def test_explain_says_something_on_every_builtin_study(reports, capsys):
    """Every built-in study records the cheap probes at least, so ``scalelab explain`` prints a
    finding, or an explicit "healthy: ..." line with numbers, for every level."""
    import re

    from scalelab._cli import main

    for name, (path, _) in reports.items():
        assert main(["explain", name, "--db", str(path.parent / "all.db")]) == 0
        out = capsys.readouterr().out
        findings = [line for line in out.splitlines() if line.startswith("- [")]
        assert findings and "No findings" not in out, (name, out)
        for line in findings:
            if line.startswith("- [no-pathology]"):
                assert "healthy:" in line and re.search(r"\d", line.split("healthy:", 1)[1]), line


def test_loss_panels_name_their_loss_and_unit(reports):
    html = reports["input-scaling"][0].read_text()
    assert "train loss (cross-entropy, nats)" in html and "final train loss (cross-entropy, nats)" in html
    html = reports["function-approximation"][0].read_text()
    assert "train loss (MSE, squared target units" in html


def test_accuracy_intervals_stay_in_0_1():
    """The t interval of a mean accuracy near 1 reaches past 1 by the formula; it is cut there
    (by hand: mean 0.9667, std 0.0577, t(0.975, 2) = 4.303, half width 0.1434)."""
    from scipy import stats

    from scalelab.report._summary import describe

    v = [1.0, 1.0, 0.9]
    mean, std = sum(v) / 3, (sum((x - sum(v) / 3) ** 2 for x in v) / 2) ** 0.5
    half = stats.t.ppf(0.975, 2) * std / 3 ** 0.5
    d = describe(v, (0.0, 1.0))
    assert mean + half > 1 and d["ci95"] == [mean - half, 1.0]
    assert describe(v)["ci95"][1] == mean + half   # unbounded metrics keep the formula's interval
