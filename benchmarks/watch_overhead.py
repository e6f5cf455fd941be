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
60000 samples. On TensorFlow and JAX the probes' computations are traced (JAX also compiles
them) once per run: a fixed cost that a longer run spreads over more steps.
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
    """This process's backend (KERAS_BACKEND): every preset, interleaved, ``repeats`` times."""
    import keras

    import scalelab
    import scalelab.keras

    ds = scalelab.load_fashion_mnist()
    X, y = ds.X_train.reshape(-1, 28, 28) / 255.0, ds.y_train
    presets = ["none-no-callback", *a.presets.split(",")]
    times: dict[str, list[float]] = {p: [] for p in presets}
    with tempfile.TemporaryDirectory() as tmp:
        model(keras).fit(X[:2000], y[:2000], epochs=1, verbose=0)   # warm-up
        for r in range(a.repeats):
            for p in presets:
                m = model(keras)
                cb = [] if p == "none-no-callback" else [
                    scalelab.keras.Diagnose(f"bench-{p}", db=f"{tmp}/b.db", probes=p, probe_data=(X, y), verbose=False)]
                t = time.perf_counter()
                m.fit(X, y, epochs=a.epochs, batch_size=32, callbacks=cb, verbose=0)
                times[p].append(time.perf_counter() - t)
    steps = a.epochs * -(-len(y) // 32)
    base = statistics.median(times["none-no-callback"])
    return {"backend": keras.backend.backend(), "keras": keras.__version__, "epochs": a.epochs, "steps": steps,
            "repeats": a.repeats, "seconds": times,
            "step_ms": {p: 1000 * statistics.median(v) / steps for p, v in times.items()},
            "overhead": {p: statistics.median(v) / base - 1 for p, v in times.items() if p != "none-no-callback"}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="tensorflow,jax,torch")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--presets", default="cheap,standard,full")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="write the JSON results here too")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)   # a child: this process's backend
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one_backend(a)))
        return
    out = {"model": "seed-000 Keras MLP 784-128-10, Adam, batch 32, Fashion-MNIST /255",
           "command": "python benchmarks/watch_overhead.py " + " ".join(sys.argv[1:]), "cpu_threads": os.cpu_count(),
           "load_average": {}, "backends": {}}
    runs = out["backends"]
    for backend in a.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        before = os.getloadavg()
        child = subprocess.run([sys.executable, __file__, "--one", "--epochs", str(a.epochs), "--repeats",
                                str(a.repeats), "--presets", a.presets], capture_output=True, text=True, env=env)
        if child.returncode != 0:
            sys.exit(f"{backend}: {child.stderr[-2000:]}")
        runs[backend] = json.loads(child.stdout.strip().splitlines()[-1])
        out["load_average"][backend] = {"before": list(before), "after": list(os.getloadavg())}
        if a.out:   # after each backend: a long run on a loaded machine keeps what it measured
            with open(a.out, "w") as f:
                json.dump(out, f, indent=1)
    if a.json:
        print(json.dumps(out, indent=1))
        return
    for backend, r in runs.items():
        for p, v in r["seconds"].items():
            extra = "" if p == "none-no-callback" else f"  overhead {100 * r['overhead'][p]:+.1f}%"
            print(f"{backend:>10} {p:>17}: {statistics.median(v):7.2f} s per fit, {r['step_ms'][p]:.3f} ms per step"
                  f"{extra}")


if __name__ == "__main__":
    main()
