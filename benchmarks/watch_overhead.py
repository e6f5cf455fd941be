"""What does watching cost? The seed-000 user's Keras model (Flatten -> Dense(128, relu) ->
Dense(10, softmax), Adam, batch 32, Fashion-MNIST /255) trained by ``model.fit`` without a
callback and with ``scalelab.keras.Diagnose`` at each probe preset, interleaved so all share
the machine's load, on each of Keras's backends (TensorFlow, JAX, torch; one process each,
as Keras picks its backend at import); reports the seconds per fit, the step time and each
preset's overhead (median over repeats).

    python benchmarks/watch_overhead.py [--backends tensorflow,jax,torch] [--epochs 1] [--repeats 2]
                                        [--json] [--out FILE]

The probes run on a log schedule (8 points per decade of steps, plus the last step), so
their share of a run shrinks as runs get longer: the figures are for ``--epochs`` epochs of
60000 samples. ``overhead`` is for a fit in a process that has already run the same model
with that preset (an untimed warm-up fit of each preset first): on JAX the probes'
computations are compiled once per model structure and process, and this is what every
later fit costs (the seed-000 script's second and third models, a sweep, a rerun in a
notebook). ``cold_overhead`` is the first watched fit in a fresh process, compile included
(one fresh process per preset: a fit without the callback, the watched fit, another fit
without it; against the mean of the two). Each is measured twice: wall-clock seconds, and
the process's CPU seconds (all its threads), which other jobs on a shared machine disturb
far less (``cpu_*``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def model(keras):
    keras.utils.set_random_seed(0)
    m = keras.models.Sequential([keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                                 keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def one_backend(a) -> dict:
    """This process's backend (KERAS_BACKEND): every preset, interleaved, ``repeats`` times, after an
    untimed warm-up fit of each; with ``--cold PRESET`` instead: that preset's first watched fit."""
    import keras

    import scalelab
    import scalelab.keras

    ds = scalelab.load_fashion_mnist()
    X, y = ds.X_train.reshape(-1, 28, 28) / 255.0, ds.y_train
    presets = ["none-no-callback", *a.presets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        def fit(p, rows=len(y)):
            m = model(keras)
            cb = [] if p == "none-no-callback" else [
                scalelab.keras.Diagnose(f"bench-{p}", db=f"{tmp}/b.db", probes=p, probe_data=(X, y), verbose=False)]
            t, c = time.perf_counter(), time.process_time()
            m.fit(X[:rows], y[:rows], epochs=a.epochs, batch_size=32, callbacks=cb, verbose=0)
            return time.perf_counter() - t, time.process_time() - c

        fit("none-no-callback", 2000)   # warm-up: Keras's and the backend's own first-use costs
        if a.cold:   # the first watched fit in this process, between two fits without the callback
            before, cold, after = fit("none-no-callback"), fit(a.cold), fit("none-no-callback")
            return {"preset": a.cold, "seconds": {"none-no-callback": [before[0], after[0]], a.cold: [cold[0]]},
                    "cpu_seconds": {"none-no-callback": [before[1], after[1]], a.cold: [cold[1]]},
                    "cold_overhead": cold[0] / ((before[0] + after[0]) / 2) - 1,
                    "cpu_cold_overhead": cold[1] / ((before[1] + after[1]) / 2) - 1}
        for p in presets[1:]:
            fit(p, 2000)   # warm-up: what a process compiles once per model structure
        times: dict[str, list[float]] = {p: [] for p in presets}
        cpu: dict[str, list[float]] = {p: [] for p in presets}
        for r in range(a.repeats):
            for p in presets:
                wall, c = fit(p)
                times[p].append(wall)
                cpu[p].append(c)
    steps = a.epochs * -(-len(y) // 32)
    base, cpu_base = statistics.median(times["none-no-callback"]), statistics.median(cpu["none-no-callback"])
    return {"backend": keras.backend.backend(), "keras": keras.__version__, "epochs": a.epochs, "steps": steps,
            "repeats": a.repeats, "seconds": times, "cpu_seconds": cpu,
            "step_ms": {p: 1000 * statistics.median(v) / steps for p, v in times.items()},
            "overhead": {p: statistics.median(v) / base - 1 for p, v in times.items() if p != "none-no-callback"},
            # the fastest of the repeats: the fit least disturbed by other jobs on a shared machine
            "overhead_min": {p: min(v) / min(times["none-no-callback"]) - 1 for p, v in times.items()
                             if p != "none-no-callback"},
            "cpu_overhead": {p: statistics.median(v) / cpu_base - 1 for p, v in cpu.items() if p != "none-no-callback"}}


def child(a, backend: str, *extra: str) -> dict:
    # the environment as a user's (no OMP_WAIT_POLICY=PASSIVE, which `make test` sets: it slows torch's small
    # ops several-fold); spinning OpenMP threads do inflate the CPU seconds on a shared machine
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("OMP_WAIT_POLICY", None)
    run = subprocess.run([sys.executable, __file__, "--one", "--epochs", str(a.epochs), "--repeats", str(a.repeats),
                          "--presets", a.presets, *extra], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"{backend}: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="tensorflow,jax,torch")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--presets", default="cheap,standard,full")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="write the JSON results here too")
    ap.add_argument("--no-cold", action="store_true", help="skip the first-fit (compile included) measurements")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)   # a child: this process's backend
    ap.add_argument("--cold", help=argparse.SUPPRESS)                       # a child: one preset's first fit
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one_backend(a)))
        return
    out = {"model": "seed-000 Keras MLP 784-128-10, Adam, batch 32, Fashion-MNIST /255",
           "command": "python benchmarks/watch_overhead.py " + " ".join(sys.argv[1:]), "cpu_threads": os.cpu_count(),
           "load_average": {}, "backends": {}}
    runs = out["backends"]
    for backend in a.backends.split(","):
        before = os.getloadavg()
        runs[backend] = child(a, backend)
        if not a.no_cold:
            cold = [child(a, backend, "--cold", p) for p in a.presets.split(",")]
            for k in ("seconds", "cpu_seconds"):
                runs[backend][f"cold_{k}"] = {c["preset"]: c[k] for c in cold}
            for k in ("cold_overhead", "cpu_cold_overhead"):
                runs[backend][k] = {c["preset"]: c[k] for c in cold}
        out["load_average"][backend] = {"before": list(before), "after": list(os.getloadavg())}
        if a.out:   # after each backend: a long run on a loaded machine keeps what it measured
            with open(a.out, "w") as f:
                json.dump(out, f, indent=1)
    if a.json:
        print(json.dumps(out, indent=1))
        return
    for backend, r in runs.items():
        for p, v in r["seconds"].items():
            extra = "" if p == "none-no-callback" else (f"  overhead {100 * r['overhead'][p]:+.1f}% "
                                                         f"(fastest {100 * r['overhead_min'][p]:+.1f}%, "
                                                         f"CPU {100 * r['cpu_overhead'][p]:+.1f}%)")
            if p in r.get("cold_overhead", {}):
                extra += (f", first fit in a process {100 * r['cold_overhead'][p]:+.1f}% "
                          f"(CPU {100 * r['cpu_cold_overhead'][p]:+.1f}%)")
            print(f"{backend:>10} {p:>17}: {statistics.median(v):7.2f} s per fit, {r['step_ms'][p]:.3f} ms per step"
                  f"{extra}")


if __name__ == "__main__":
    main()
