"""What does watching cost? The seed-000 user's Keras model (Flatten -> Dense(128, relu) ->
Dense(10, softmax), Adam, batch 32, Fashion-MNIST /255) trained by ``model.fit`` on Keras 3's
torch backend without a callback and with ``scalelab.keras.Diagnose`` at each probe preset,
interleaved so all share the machine's load; reports the seconds per fit, the step time and
each preset's overhead (median over repeats).

    python benchmarks/watch_overhead.py [--epochs 1] [--repeats 2] [--json]

The probes run on a log schedule (8 points per decade of steps, plus the last step), so
their share of a run shrinks as runs get longer: the figures are for ``--epochs`` epochs of
60000 samples.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402

import scalelab  # noqa: E402
import scalelab.keras  # noqa: E402


def model():
    keras.utils.set_random_seed(0)
    m = keras.models.Sequential([keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                                 keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--presets", default="cheap,standard,full")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    ds = scalelab.load_fashion_mnist()
    X, y = ds.X_train.reshape(-1, 28, 28) / 255.0, ds.y_train
    presets = ["none-no-callback", *a.presets.split(",")]
    times: dict[str, list[float]] = {p: [] for p in presets}
    with tempfile.TemporaryDirectory() as tmp:
        model().fit(X[:2000], y[:2000], epochs=1, verbose=0)   # warm-up
        for r in range(a.repeats):
            for p in presets:
                m = model()
                cb = [] if p == "none-no-callback" else [
                    scalelab.keras.Diagnose(f"bench-{p}", db=f"{tmp}/b.db", probes=p, probe_data=(X, y), verbose=False)]
                t = time.perf_counter()
                m.fit(X, y, epochs=a.epochs, batch_size=32, callbacks=cb, verbose=0)
                times[p].append(time.perf_counter() - t)
    steps = a.epochs * -(-len(y) // 32)
    base = statistics.median(times["none-no-callback"])
    out = {"model": "seed-000 Keras MLP 784-128-10, Adam, batch 32", "backend": "torch", "keras": keras.__version__,
           "epochs": a.epochs, "steps": steps, "repeats": a.repeats, "cpu_threads": os.cpu_count(),
           "seconds": times,
           "step_ms": {p: 1000 * statistics.median(v) / steps for p, v in times.items()},
           "overhead": {p: statistics.median(v) / base - 1 for p, v in times.items() if p != "none-no-callback"}}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for p, v in times.items():
            extra = "" if p == "none-no-callback" else f"  overhead {100 * out['overhead'][p]:+.1f}%"
            print(f"{p:>17}: {statistics.median(v):7.2f} s per fit, {out['step_ms'][p]:.3f} ms per step{extra}")


if __name__ == "__main__":
    main()
