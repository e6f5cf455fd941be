"""One Keras backend's side of tests/test_keras_backends.py, run in a subprocess (Keras picks its
backend at import): ``python keras_backend_worker.py OUT.json WORKDIR`` under KERAS_BACKEND=...

Writes JSON: ``probes`` (every probe row of a short fit from fixed weights and batches, "full"
preset, and of a raw-input fit, "cheap"), ``sigmoid`` (a saturated sigmoid output's probe loss and
Keras's own ``evaluate``), ``losses`` (Keras's reported epoch losses with and
without the callback, and the callback's recorded ones; on TensorFlow also with XLA), ``seed000``
(finding ids per input scaling of the seed-000 model on synthetic Fashion-like images); on
TensorFlow and JAX also ``crash`` (issue 29's Keras crash matrix, tests/keras_crash_cases.py:
per case the epoch losses without the callback and with it at probes none and standard, what
it printed, or the exception that escaped fit) and ``gallery`` (a few of examples/gallery/'s
Keras programs, broken and fixed, scored as benchmarks/diagnose_gallery.py scores them).
"""

import io
import json
import os
import sys
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import scalelab.keras  # noqa: E402
from conftest import synthetic_images  # noqa: E402
from scalelab import Store  # noqa: E402


def data(n=96, scale=1 / 255, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 8, 8)).astype("float32") * scale
    y = (X[:, :4].mean(axis=(1, 2)) > X[:, 4:].mean(axis=(1, 2))).astype("int64") + (X[:, 0, 0] > 128 * scale)
    return X, y


def small_model(weights=True, jit_compile="auto"):
    keras.utils.set_random_seed(0)
    m = keras.models.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(3, activation="softmax")])
    if weights:   # the same numbers on every backend (Keras's initializers draw differently per backend)
        rng = np.random.default_rng(1)
        m.set_weights([rng.uniform(-0.4, 0.4, (64, 16)), rng.uniform(-0.1, 0.1, 16), rng.uniform(-0.5, 0.5, (16, 3)),
                       rng.uniform(-0.1, 0.1, 3)])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
    return m


def rows(db, study):
    store = Store(db)
    trial = store.trials(store.require_study(study)["id"])[0]
    out = {f"{s}|{p}|{n}": v for s, p, n, v in store.probes(trial["id"])}
    epochs = [e["train_loss"] for e in store.epochs(trial["id"])]
    store.close()
    return out, epochs


def probes(work):
    X, y = data()
    d = scalelab.keras.Diagnose("p", db=f"{work}/p.db", probes="full", probe_data=(X, y), probe_batch=64,
                                verbose=False)
    small_model().fit(X, y, epochs=1, batch_size=32, shuffle=False, callbacks=[d], verbose=0)
    full, _ = rows(f"{work}/p.db", "p")
    Xr, yr = data(scale=1.0)   # raw 0..255 inputs: Keras's clip is active, the zero-gradient share is not 0
    d = scalelab.keras.Diagnose("r", db=f"{work}/r.db", probes="cheap", probe_data=(Xr, yr), verbose=False)
    small_model().fit(Xr, yr, epochs=1, batch_size=32, shuffle=False, callbacks=[d], verbose=0)
    raw, _ = rows(f"{work}/r.db", "r")
    store = Store(f"{work}/r.db")   # the clip the stored spec records (0 where the loss reads the logits)
    spec_clip = store.trials(store.require_study("r")["id"])[0]["spec"]["loss"]["clip"]
    store.close()
    return {"full": full, "raw": raw, "clip": spec_clip}


def sigmoid(work):
    """A saturated sigmoid output under binary cross-entropy, from fixed weights: the probes' loss at step 0
    and Keras's own ``evaluate`` on the same rows and weights (the oracle: what the backend computes, clipped
    to [1e-7, 1 - 1e-7] on torch and JAX, from the sigmoid's logits on TensorFlow)."""
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(64, 4)) * 100).astype("float32")
    y = ((X[:, 0] > 0) ^ (rng.random(64) < 0.25)).astype("float32")   # a quarter confidently wrong
    keras.utils.set_random_seed(0)
    m = keras.models.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    m.set_weights([np.array([[0.4], [0.0], [0.0], [0.0]]), np.zeros(1)])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    keras_loss = float(m.evaluate(X, y, batch_size=64, verbose=0))
    d = scalelab.keras.Diagnose("b", db=f"{work}/b.db", probes="cheap", probe_data=(X, y), probe_batch=64,
                                verbose=False)
    m.fit(X, y, epochs=1, batch_size=64, shuffle=False, callbacks=[d], verbose=0)
    got, _ = rows(f"{work}/b.db", "b")
    return {"keras": keras_loss, "probe": got["0|loss|probe_batch"], "zero_share": got["0|zero_grad|share"]}


def sharing():
    """Which models share the probes' compiled computations (``_compiled.signature``): pairs of models,
    each pair's keys equal or not. Only a model built the same way may share; the probes' numbers on a
    sharing model are checked against torch by ``probes`` (its raw-input model shares the full run's)."""
    from scalelab.attach._keras_backends import adapter
    from scalelab.attach._keras_backends._compiled import signature

    def build(units=16, act="relu", loss="sparse_categorical_crossentropy", seed=0):
        keras.utils.set_random_seed(seed)
        m = keras.models.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),
                                     keras.layers.Dense(units, activation=act), keras.layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss=loss)
        return m

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.h, self.o = keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)

        def call(self, x):
            return self.o(self.h(keras.ops.reshape(x, (-1, 64))))

    def sub():
        m = Sub()
        m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        m(np.zeros((1, 8, 8), "float32"))
        return m

    def key(m):
        return signature(adapter(m))

    one = sub()
    pairs = {"the same build, other weights": (build(), build(seed=1)), "other units": (build(), build(units=17)),
             "another activation": (build(), build(act="tanh")),
             "two lambdas": (build(act=lambda z: z), build(act=lambda z: z)),
             "another loss": (build(), build(loss="categorical_crossentropy")),
             "a subclassed model and itself": (one, one), "two subclassed models": (sub(), sub())}
    return {name: key(a) == key(b) for name, (a, b) in pairs.items()}


def losses(work):
    X, y = data(n=200, seed=3)
    out = {}
    for jit in ["auto", True] if keras.backend.backend() == "tensorflow" else ["auto"]:
        plain = small_model(weights=False, jit_compile=jit).fit(X, y, epochs=2, batch_size=32, verbose=0)
        study = f"l{jit}"
        d = scalelab.keras.Diagnose(study, db=f"{work}/l.db", probes="standard", verbose=False)
        watched = small_model(weights=False, jit_compile=jit).fit(X, y, epochs=2, batch_size=32, callbacks=[d],
                                                                   verbose=0)
        out[str(jit)] = {"plain": plain.history["loss"], "watched": watched.history["loss"],
                         "recorded": rows(f"{work}/l.db", study)[1]}
    return out


def diverged(work):
    """One batch whose loss is not finite (an infinite sample weight planted in its first sample, batches in
    order): the step the session records as the first that diverged, whether probes were due at it or not
    (the compiled backends read the loss only at probed steps and epoch ends), beside the first batch whose
    running loss in Keras's own batch logs is not finite (the oracle)."""
    X, y = data(n=32 * 64, seed=5)

    class FirstNotFinite(keras.callbacks.Callback):
        first = None

        def on_train_batch_end(self, batch, logs=None):
            if self.first is None and not np.isfinite(logs["loss"]):
                self.first = batch

    out = {}
    for k in (2, 13, 37, 50, 63):   # probed (2), not probed under the standard preset (13, 37, 50), the last
        sw = np.ones(len(y), "float32")
        sw[32 * k] = np.inf
        keras_logs = FirstNotFinite()
        small_model(weights=False).fit(X, y, sample_weight=sw, epochs=1, batch_size=32, shuffle=False,
                                       callbacks=[keras_logs], verbose=0)
        d = scalelab.keras.Diagnose(f"d{k}", db=f"{work}/d.db", probes="standard", verbose=False)
        small_model(weights=False).fit(X, y, sample_weight=sw, epochs=1, batch_size=32, shuffle=False, callbacks=[d],
                                       verbose=0)
        store = Store(f"{work}/d.db")
        trial = store.trials(store.require_study(f"d{k}")["id"])[0]
        out[str(k)] = {"keras": keras_logs.first, "status": trial["status"], "recorded": trial["diverged_step"]}
        store.close()
    return out


def seed000(work):
    """The seed-000 user's model (Flatten, Dense(128, relu), Dense(10, softmax), Adam) on raw and /255 pixels."""
    Xtrain, ytrain = synthetic_images(1200, 1)
    found = {}
    for label, factor in (("1/255", 255.0), ("1", 1.0)):
        Xtrain_norm = Xtrain.copy() / factor
        keras.utils.set_random_seed(0)
        model = keras.models.Sequential([keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                                         keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        d = scalelab.keras.Diagnose("s", db=f"{work}/s.db", level={"input.scale": label},
                                    probe_data=(Xtrain_norm, ytrain), verbose=False)
        model.fit(Xtrain_norm, ytrain, epochs=2, callbacks=[d], verbose=0)
        found[label] = sorted({(f.id, f.role) for f in d.findings})
    return found


def crash(work):
    """The crash matrix's Keras cases, as tests/test_attach_crash_matrix.py runs them on torch."""
    from keras_crash_cases import cases_on, keras_fit

    out = {}
    for case in cases_on(keras.backend.backend()):
        r = out[case] = {}
        try:
            r["plain"] = keras_fit(case, [])
            for probes in ("none", "standard"):
                buf = io.StringIO()
                with redirect_stdout(buf):
                    d = scalelab.keras.Diagnose(f"m{probes}", db=f"{work}/m.db", probes=probes)
                    r[probes] = keras_fit(case, [d])
                r[f"out_{probes}"] = buf.getvalue()
        except Exception:   # noqa: BLE001 - what escaped fit is the result the test reports
            r["error"] = traceback.format_exc(limit=-4)
    return out


# a check before the first step (output x loss), a loop rule on the input scale, where TensorFlow's loss
# differs (no clip), and a sigmoid output under binary cross-entropy (k13), whose logits TensorFlow's loss reads:
# its fixed twin, confidently right, must not be blamed for clipped zero gradients TensorFlow does not have.
# Each program costs ~7 s of CPU here.
GALLERY = ["k01", "k08", "k13"]


def gallery(work):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import diagnose_gallery

    out = {}
    for name in diagnose_gallery.programs(GALLERY):
        broken = diagnose_gallery.run_one(name, False, f"{work}/gb_{name}.db")
        fixed = diagnose_gallery.run_one(name, True, f"{work}/gf_{name}.db")
        out[name] = {"score": diagnose_gallery.score(broken, fixed), "broken": broken.get("causes"),
                     "fixed": fixed.get("causes"), "error": broken.get("error") or fixed.get("error"),
                     "output": broken.get("output", "") + fixed.get("output", "")}
    return out


def main():
    out, work = sys.argv[1], sys.argv[2]
    result = {"backend": keras.backend.backend(), "probes": probes(work), "sigmoid": sigmoid(work),
              "losses": losses(work), "diverged": diverged(work), "seed000": seed000(work)}
    t0 = time.process_time()
    if keras.backend.backend() != "torch":   # on torch both run in-process (test_attach_crash_matrix, test_diagnose_gallery)
        result["sharing"] = sharing()
        result["crash"] = crash(work)
    t1 = time.process_time()
    if keras.backend.backend() == "tensorflow":   # Keras's default backend: the gallery's programs as written
        result["gallery"] = gallery(work)
    result["cpu_s"] = {"crash": t1 - t0, "gallery": time.process_time() - t1}   # this process's CPU time
    print(f"{keras.backend.backend()}: CPU s {result['cpu_s']}", file=sys.stderr)
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
