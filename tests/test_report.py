"""The HTML report: self-contained, and rendered by a real headless Chromium with no console
errors, no network request and every plot present with a non-zero size."""

import base64
import os
import re
from pathlib import Path

import pytest

from browser import Chromium, find_chromium
from conftest import small_spec
from scalelab import Store, run_study
from scalelab._cli import main
from scalelab._spec import parse_spec

requires_chromium = pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"),
                                       reason="Chromium not installed (make test installs Debian's chromium)")


@pytest.fixture
def small_study(tmp_path, fake_fmnist):
    """Two input scales with the cheap probes, and a third level whose trials diverge."""
    spec = parse_spec(small_spec(fake_fmnist, profile="torch", seeds=2, probes={"preset": "cheap"},
                                 optim={"name": "sgd", "lr": 0.05},
                                 arms={"scaled": {"input.scale": "1/255"}, "raw": {"input.scale": 1},
                                       "explodes": {"input.scale": 1e6, "optim.lr": 1e12}}))
    db = tmp_path / "s.db"
    run_study(spec, db)
    return db


def test_report_is_self_contained_and_lists_everything(tmp_path, small_study):
    out, png = tmp_path / "r" / "report.html", tmp_path / "png"
    assert main(["report", "tiny", "--db", str(small_study), "-o", str(out), "--png", str(png)]) == 0
    text = out.read_text()
    # nothing fetched from elsewhere: no external src/href, no script or stylesheet link
    assert not re.search(r"""(src|href)\s*=\s*['"](?!data:|#)""", text)
    assert "<link" not in text and "@import" not in text
    for name in ("curves", "final-vs-arm", "probes"):
        assert f"data-plot='{name}'" in text
        panels = sorted(png.glob(f"{name}-*.png"))
        assert panels and all(p.stat().st_size > 1000 and p.with_suffix(".svg").read_text().startswith("<?xml")
                              for p in panels)
    assert (png / "curves-train-loss.png").exists() and (png / "final-vs-arm-test-acc.png").exists()
    assert "Diverged trials" in text and "arm=explodes, seed 0" in text
    assert "tiny" in text and "Findings" in text and "Environment" in text
    assert "<span class='id'>diverged</span> at arm=explodes, 2 of 2 seeds diverged" in text
    assert out.stat().st_size < 5e6


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", "nope", "--db", str(tmp_path / "none.db")]) == 2
    assert "no store at" in capsys.readouterr().err


@requires_chromium
def test_report_renders_in_headless_chromium(tmp_path, small_study):
    out = tmp_path / "report.html"
    assert main(["report", "tiny", "--db", str(small_study), "-o", str(out)]) == 0
    b = Chromium()
    try:
        session = b.open_page()
        url = out.resolve().as_uri()
        b.send("Page.navigate", {"url": url}, session=session)
        b.wait_for("Page.loadEventFired")
        sizes = b.send("Runtime.evaluate", {"returnByValue": True, "expression": """
            [...document.querySelectorAll('figure[data-plot] svg')].map(e => {
              const r = e.getBoundingClientRect();
              return {name: e.closest('figure').dataset.plot, w: r.width, h: r.height,
                      text: e.querySelectorAll('text').length};
            })"""}, session=session)["result"]["value"]
        assert {s["name"] for s in sizes} == {"curves", "final-vs-arm", "probes"}
        for s in sizes:
            assert s["w"] > 100 and s["h"] > 100 and s["text"] > 3, s
        shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        Path(os.environ.get("SCALELAB_SCREENSHOT", tmp_path / "report.png")).write_bytes(base64.b64decode(shot["data"]))
        # a phone-sized viewport: the page itself never scrolls sideways (tables scroll in their box)
        b.send("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2,
                                                       "mobile": True}, session=session)
        b.send("Page.reload", session=session)
        b.wait_for("Page.loadEventFired")
        width = b.send("Runtime.evaluate", {"returnByValue": True,
                                            "expression": "document.documentElement.scrollWidth"},
                       session=session)["result"]["value"]
        assert width <= 391
        errors = [e for e in b.events if e.get("method") in ("Runtime.exceptionThrown", "Log.entryAdded")
                  and (e["method"] == "Runtime.exceptionThrown" or e["params"]["entry"]["level"] == "error")]
        errors += [e for e in b.events if e.get("method") == "Runtime.consoleAPICalled"
                   and e["params"]["type"] in ("error", "assert")]
        assert errors == []
        requests = [e["params"]["request"]["url"] for e in b.events if e.get("method") == "Network.requestWillBeSent"]
        assert requests and all(u == url or u.startswith("data:") for u in requests), requests
    finally:
        b.close()
