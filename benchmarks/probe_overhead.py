"""What do probes cost? The input-scaling study's group (3 scales × 5 seeds, 5 epochs on real
Fashion-MNIST) trained with no probes and with a preset, interleaved so both share the
machine's load; reports each run's wall time and the overhead ratio (median over repeats).

    python benchmarks/probe_overhead.py                       # standard preset, 5 epochs, 2 repeats
    python benchmarks/probe_overhead.py --preset full --epochs 1 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from scalelab import builtin_spec, expand, train_group  # noqa: E402
from scalelab._study import with_overrides  # noqa: E402
from scalelab.probes import make_probe_set  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    spec = with_overrides(builtin_spec("input-scaling"), [f"train.epochs={a.epochs}", f"probes.preset='{a.preset}'"])
    trials = expand(spec)
    train_group(trials[:3], device=a.device)  # warm-up: data load, allocator
    times = {"none": [], a.preset: []}
    n_rows = 0
    for _ in range(a.repeats):
        for preset in ("none", a.preset):
            probes = make_probe_set(trials) if preset != "none" else None
            t = time.perf_counter()
            res = train_group(trials, device=a.device, probes=probes)
            times[preset].append(time.perf_counter() - t)
            n_rows = max(n_rows, sum(len(r.probes) for r in res))
    base, probed = statistics.median(times["none"]), statistics.median(times[a.preset])
    out = dict(preset=a.preset, epochs=a.epochs, models=len(trials), device=a.device, wall_s=times,
               median_none_s=base, median_probed_s=probed, overhead=probed / base - 1, probe_rows=n_rows)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{len(trials)} models, {a.epochs} epochs on {a.device}: no probes {base:.1f} s, {a.preset} {probed:.1f} s "
              f"(median of {a.repeats}); overhead {100 * out['overhead']:.1f}%; {n_rows} probe rows")


if __name__ == "__main__":
    main()
