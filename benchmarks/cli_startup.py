"""How long does the CLI take to start? The median wall time of N fresh interpreters
running ``python -m scalelab --help`` and ``python -c "import scalelab"``, each a
subprocess, interleaved so both share the machine's load. The floor is the interpreter
itself (``python -c pass``), reported alongside.

    python benchmarks/cli_startup.py              # 15 runs each, a table
    python benchmarks/cli_startup.py -n 30 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
COMMANDS = {
    "help_s": ["-m", "scalelab", "--help"],
    "import_s": ["-c", "import scalelab"],
    "python_s": ["-c", "pass"],
}


def wall(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true", help='print {"help_s": ..., "import_s": ...}')
    args = ap.parse_args()
    # this checkout's package, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}
    for a in COMMANDS.values():  # warm the file cache and the bytecode
        wall(a, env)
    times = {k: [] for k in COMMANDS}
    for _ in range(args.runs):
        for k, a in COMMANDS.items():
            times[k].append(wall(a, env))
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update(runs=args.runs, python=platform.python_version(), cpus=os.cpu_count(),
               max_s={k: max(v) for k, v in times.items()})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k in COMMANDS:
            print(f"{' '.join(COMMANDS[k]):26s} median {out[k]:.3f} s   max {out['max_s'][k]:.3f} s  ({args.runs} runs)")


if __name__ == "__main__":
    main()
