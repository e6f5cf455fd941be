"""scalelab.keras.Diagnose on real Keras 3 (torch backend): it records Keras's own losses,
Keras's clipped cross-entropy and its exactly-zero gradients, restores the model after fit,
and the seed-000 example names the same mechanisms as the built-in input-scaling study."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("these tests run Keras on its torch backend", allow_module_level=True)

import scalelab.keras  # noqa: E402
from scalelab import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def data(n=384, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 8, 8)).astype("float32") * scale
    y = (X[:, :4].mean(axis=(1, 2)) > X[:, 4:].mean(axis=(1, 2))).astype("int64") + (X[:, 0, 0] > 128 * scale)
    return X, y


def seed_model():
    keras.utils.set_random_seed(0)
    model = keras.models.Sequential([keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                                     keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_recorded_loss_is_keras_reported_loss(tmp_path):
    X, y = data(scale=1 / 255)
    model = seed_model()
    d = scalelab.keras.Diagnose("k", db=str(tmp_path / "k.db"), probes="standard", verbose=False)
    hist = model.fit(X, y, epochs=3, batch_size=32, callbacks=[d], verbose=0)
    store = Store(tmp_path / "k.db")
    trial = store.trials(store.require_study("k")["id"])[0]
    ours = [e["train_loss"] for e in store.epochs(trial["id"])]
    # ours: the sample-weighted mean of the batch losses the callback saw; Keras's: its loss tracker
    np.testing.assert_allclose(ours, hist.history["loss"], rtol=1e-5)
    # the model is Keras's own again: no wrapper left behind
    assert "train_step" not in model.__dict__ and "_compute_loss" not in model.__dict__
    assert all("call" not in layer.__dict__ and "activation" not in layer.__dict__ or
               layer.__dict__.get("activation") in (keras.activations.relu, keras.activations.softmax)
               for layer in model.layers)
    assert trial["spec"]["loss"]["clip"] == pytest.approx(1e-7) and trial["env"]["watched"] == "keras"


def test_clipped_loss_and_zero_gradient_share_against_keras(tmp_path):
    X, y = data(n=200, scale=1.0)   # raw 0..255 inputs: the softmax saturates, Keras's clip is active
    model = seed_model()
    model.build((None, 8, 8))
    probs = model.predict(X, verbose=0)
    per = keras.losses.sparse_categorical_crossentropy(y, probs)   # Keras's own loss, on Keras's forward
    keras_loss = float(np.mean(keras.ops.convert_to_numpy(per)))
    p_true = probs.astype("float64")[np.arange(len(y)), y] / probs.astype("float64").sum(1)
    eps = keras.config.epsilon()
    clipped = float(np.mean((p_true < eps) | (p_true > 1 - eps)))
    assert clipped > 0.5   # the case the probe is about

    d = scalelab.keras.Diagnose("z", db=str(tmp_path / "z.db"), probes="cheap", probe_data=(X, y), verbose=False)
    model.fit(X, y, epochs=1, batch_size=50, callbacks=[d], verbose=0)
    store = Store(tmp_path / "z.db")
    rows = {(s, p, n): v for s, p, n, v in store.probes(store.trials(store.require_study("z")["id"])[0]["id"])}
    assert rows[(0, "loss", "probe_batch")] == pytest.approx(keras_loss, rel=1e-4)
    # float32 probabilities on the clip's edge may fall either side: one sample of slack
    assert rows[(0, "zero_grad", "share")] == pytest.approx(clipped, abs=1.5 / len(y))


def test_input_scale_is_named_where_the_run_shows_it(tmp_path):
    """Planted on both sides, on real Keras: raw 0..255 inputs with Keras's default initialization
    saturate the softmax before the first step, so beside other levels the input-scale check is
    named, quoting the median logit range (here against the logits computed in numpy from the
    model's initial weights); the same raw inputs with a first kernel 255x smaller start at
    unit-scale logits: the check fired but the run does not show it, so it is not named; /255
    inputs: no check at all."""
    from scalelab._explain import explain

    X, y = data(n=192)
    db = tmp_path / "s.db"
    expected = {}
    for name, scale, shrink in (("raw", 1.0, 1.0), ("raw-small-init", 1.0, 1 / 255), ("scaled", 1 / 255, 1.0)):
        model = seed_model()
        model.build((None, 8, 8))
        W1, b1, W2, b2 = model.get_weights()
        model.set_weights([W1 * shrink, b1, W2, b2])
        x = (X * scale).reshape(len(X), -1).astype("float64")
        z = np.maximum(x @ (W1 * shrink) + b1, 0) @ W2 + b2
        expected[name] = float(np.median(z.max(1) - z.min(1)))
        d = scalelab.keras.Diagnose("s", db=str(db), level={"case": name}, probe_data=(X * scale, y), verbose=False)
        model.fit(X * scale, y, epochs=1, batch_size=32, callbacks=[d], verbose=0)
    assert expected["raw"] > 16 > expected["raw-small-init"]   # the planted cases sit either side of 15.9
    store = Store(db)
    checks = {t["level"]["case"]: [c["id"] for c in t["env"]["checks"]] for t in store.trials(store.require_study("s")["id"])}
    assert "input-scale" in checks["raw"] and "input-scale" in checks["raw-small-init"]
    assert "input-scale" not in checks["scaled"]
    found = {}
    for f in explain(store, "s"):
        found.setdefault(f.level["case"], {})[f.id] = f
    f = found["raw"]["input-scale"]
    assert f.role == "cause" and f.evidence["median_logit_range"] == pytest.approx(expected["raw"], rel=1e-4)
    assert f"median logit range on the probe batch is {expected['raw']:.0f}" in f.text
    assert "input-scale" not in found["raw-small-init"] and "input-scale" not in found["scaled"]


def level_ids(findings_text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in findings_text.splitlines():
        if line.startswith("- ["):
            fid, rest = line[3:].split("] at ", 1)
            out.setdefault(rest.split(",", 1)[0], set()).add(fid)
    return out


def test_keras_example_names_the_builtin_studys_mechanisms(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    ex_db, ref_db = tmp_path / "ex.db", tmp_path / "ref.db"
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "keras_fashion_mnist.py"), "--quick", "--db",
                          str(ex_db)], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[clipped-zero-gradient] at input.scale=1," in run.stdout
    cli = [sys.executable, "-m", "scalelab"]
    ref = subprocess.run([*cli, "study", "run", "input-scaling", "--db", str(ref_db), "--quiet", "--set", "seeds=3",
                          "--set", "data.train_subset=3000", "--set", "train.epochs=2"],
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    ours = subprocess.run([*cli, "explain", "--db", str(ex_db), "keras-fashion-mnist"], capture_output=True, text=True)
    theirs = subprocess.run([*cli, "explain", "--db", str(ref_db), "input-scaling"], capture_output=True, text=True)
    got, want = level_ids(ours.stdout), level_ids(theirs.stdout)
    assert set(want) == {"input.scale=1/255", "input.scale=1", "input.scale=1/1000"}
    # class-collapse is a majority-of-seeds verdict that varies by seed at this size (raw pixels: 3, 2 and 1
    # classes cover 95% in the built-in's three seeds); the one Keras run is compared on its number instead
    seedwise = {"class-collapse"}
    # input-scale: the check a watched run makes on the user's arrays before training, named at the raw level as
    # the root cause (the clipped zero gradient its consequence); the built-in study makes no such check
    checks = {"input-scale"}
    assert {k: v - seedwise - checks for k, v in got.items()} == {k: v - seedwise for k, v in want.items()}, \
        (ours.stdout, theirs.stdout)
    assert {"clipped-zero-gradient", "input-scale"} <= got["input.scale=1"]
    assert "small-first-layer-step" in got["input.scale=1/1000"]
    assert all("input-scale" not in got[k] for k in ("input.scale=1/255", "input.scale=1/1000"))
    assert classes_for_95(ex_db, "keras-fashion-mnist", "1") <= 3 < 8 <= classes_for_95(ex_db, "keras-fashion-mnist",
                                                                                          "1/255")
    assert classes_for_95(ref_db, "input-scaling", "1") <= 3


def classes_for_95(db, study, scale) -> float:
    """The last probed step's number of classes covering 95% of predictions, mean over a level's seeds."""
    store = Store(db)
    vals = []
    for t in store.trials(store.require_study(study)["id"]):
        if str(t["level"]["input.scale"]) == scale:
            rows = [(s, v) for s, p, n, v in store.probes(t["id"]) if n == "classes_for_95pct"]
            vals.append(max(rows)[1])
    return float(np.mean(vals))


def test_unsupported_model_shapes_say_so(tmp_path, capsys):
    X, y = data(n=64, scale=1 / 255)
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, [out, out])
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy"] * 2)
    # issue 29: the callback never breaks fit; what it cannot probe is one "not probed" line
    d = scalelab.keras.Diagnose("m", db=str(tmp_path / "m.db"))
    model.fit(X, (y, y), epochs=1, callbacks=[d], verbose=0)
    out = capsys.readouterr().out
    assert "not probed: the per-sample loss (the model has 2 losses for 2 outputs; the probes read one)" in out
