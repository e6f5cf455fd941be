"""Why torch.compile used to fail over to eager now and then: the race, shown and gone.

scalelab used to start, in a background thread, inductor's check of the vector instruction
sets (``from torch._inductor import cpu_vec_isa; cpu_vec_isa.valid_vec_isa_list()``) just
before the main thread called ``torch.compile``. Both threads then imported the compiler's
circularly dependent modules at once; one of them could see a partially initialised module
and ``torch.compile`` raised ImportError, which the step caught as "torch.compile
unavailable" and ran eagerly, silently. This runs, each in a fresh process, N times:

* ``before``: that thread, then ``scalelab.optim.compile_step`` on the main thread;
* ``after``: ``compile_step`` alone, as the engine does now (no thread);

and counts the processes whose compile failed, with the error. ``--busy`` runs them beside
two CPU-bound processes.

    python benchmarks/compile_fallback.py [--runs 10] [--busy] [--out benchmarks/results/compile_fallback_cpu_2core.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, threading
import torch
from scalelab.optim import compile_step
if sys.argv[1] == "before":
    def prewarm():
        try:
            from torch._inductor import cpu_vec_isa
            cpu_vec_isa.valid_vec_isa_list()
        except Exception:
            pass
    threading.Thread(target=prewarm, daemon=True).start()
errors = []
step = compile_step(lambda x: x * 2 + 1, lambda e: errors.append(f"{type(e).__name__}: {str(e)[:120]}"))
if step is not None:
    try:
        step(torch.ones(4))
    except Exception as e:
        errors.append(f"{type(e).__name__} at the first call: {str(e)[:120]}")
print("eager: " + errors[0] if errors else "compiled")
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--busy", action="store_true", help="beside two CPU-bound processes")
    ap.add_argument("--out")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if args.busy else 0)]
    out = {}
    try:
        for variant in ("before", "after"):
            results = []
            for _ in range(args.runs):
                r = subprocess.run([sys.executable, "-c", CHILD, variant], env=env, capture_output=True, text=True)
                line = (r.stdout.strip().splitlines() or [f"crashed: {r.stderr.strip()[-200:]}"])[-1]
                results.append(line)
            counts = Counter("compiled" if x == "compiled" else "eager" for x in results)
            out[variant] = dict(compiled=counts["compiled"], eager=counts["eager"],
                                errors=sorted({x for x in results if x != "compiled"}))
            print(f"{variant}: {counts['compiled']} of {args.runs} compiled, {counts['eager']} eager "
                  f"{out[variant]['errors'][:2]}", flush=True)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    out.update(runs=args.runs, beside_busy_processes=2 if args.busy else 0,
               command=f"python benchmarks/compile_fallback.py --runs {args.runs}" + (" --busy" if args.busy else ""),
               machine=f"{os.cpu_count()} CPUs, shared with other jobs")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if out["after"]["eager"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
