"""The screenshots under docs/: a study's report in headless Chromium at 390 px (a phone)
and 1280 px (a laptop), and the CLI in an 80-column tmux pane (captured with its colours,
drawn by rich as HTML, photographed by the same browser).

    python scripts/screenshots.py --db scalelab.db --study input-scaling --out docs
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import Chromium  # noqa: E402


def shoot(b: Chromium, session: str, url: str, width: int, height: int, out: Path) -> None:
    b.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                   "mobile": width < 600}, session=session)
    b.send("Page.navigate", {"url": url}, session=session)
    b.wait_for("Page.loadEventFired")
    shot = b.send("Page.captureScreenshot", {"format": "png", "clip": {"x": 0, "y": 0, "width": width,
                                                                       "height": height, "scale": 1},
                                             "captureBeyondViewport": True}, session=session)
    out.write_bytes(base64.b64decode(shot["data"]))


def terminal(command: str, cols: int = 80, rows: int = 50) -> str:
    """Run a command in a detached tmux pane of ``cols`` columns and return the pane with colours."""
    name = f"scalelab-shot-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows)], check=True)
    try:
        subprocess.run(["tmux", "send-keys", "-t", name, f"clear; {command}; tmux wait-for -S {name}", "Enter"],
                       check=True)
        subprocess.run(["tmux", "wait-for", name], check=True, timeout=600)
        time.sleep(0.3)
        return subprocess.run(["tmux", "capture-pane", "-p", "-e", "-t", name], check=True, capture_output=True,
                              text=True).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="scalelab.db")
    ap.add_argument("--study", default="input-scaling")
    ap.add_argument("--out", default="docs")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    py = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')} {sys.executable} -m scalelab"
    subprocess.run(f"{py} report {a.study} --db {a.db} -o {tmp / 'r.html'}", shell=True, check=True)
    from rich.console import Console
    from rich.text import Text

    pane = terminal(f"{py} explain {a.study} --db {a.db} | head -12; {py} trials {a.study} --db {a.db} | head -9")
    console = Console(record=True, width=80, file=open(os.devnull, "w"))
    console.print(Text.from_ansi(pane.rstrip() + "\n"))
    (tmp / "cli.html").write_text(console.export_html(inline_styles=True))
    b = Chromium()
    try:
        session = b.open_page()
        shoot(b, session, (tmp / "r.html").as_uri(), 1280, 1500, out / f"report-{a.study}-1280.png")
        shoot(b, session, (tmp / "r.html").as_uri(), 390, 1900, out / f"report-{a.study}-390.png")
        lines = pane.rstrip().count("\n") + 1
        shoot(b, session, (tmp / "cli.html").as_uri(), 840, 30 + 19 * lines, out / "cli-80-columns.png")
    finally:
        b.close()
    print(f"written to {out}")


if __name__ == "__main__":
    main()
