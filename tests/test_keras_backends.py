"""scalelab.keras.Diagnose on Keras's three backends (TensorFlow, JAX, torch): each backend runs
in its own process (tests/keras_backend_worker.py; Keras picks its backend at import), all three at
once, and the results are compared here. A backend that is not installed is skipped with the reason.

Tolerance across backends, float32: |a - b| <= 1e-4 * max(|a|, |b|) + 1e-6. The three backends
run different kernels (oneDNN, XLA, ATen) whose float32 sums differ in order: observed differences
are below 2e-5 relative (the Hessian's power iteration) and below 2e-6 for everything else.
"""

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("keras")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
RTOL, ATOL = 1e-4, 1e-6


def missing(backend: str) -> str | None:
    module = BACKENDS[backend]
    return None if importlib.util.find_spec(module) else f"{module} is not installed (pip install 'scalelab[{backend}]')"


def run_worker(backend: str, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = work / "result.json"
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if backend == "jax":   # the worker's many same-shaped models (plain, watched: the same programs) compile once
        env.update(JAX_COMPILATION_CACHE_DIR=str(work / "jax-cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    run = subprocess.run([sys.executable, str(HERE / "keras_backend_worker.py"), str(out), str(work)],
                         capture_output=True, text=True, timeout=900, env=env)
    if run.returncode != 0:
        return {"error": run.stderr[-4000:]}
    result = json.loads(out.read_text())
    print(backend, "CPU s of the crash matrix and gallery:", result.get("cpu_s"))
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("keras-backends")
    present = [b for b in BACKENDS if missing(b) is None]
    with ThreadPoolExecutor(len(present) or 1) as pool:   # TensorFlow and JAX import slowly: all at once
        done = dict(zip(present, pool.map(lambda b: run_worker(b, base / b), present)))
    return done


def result(results, backend):
    why = missing(backend)
    if why:
        pytest.skip(why)
    r = results[backend]
    assert "error" not in r, r.get("error")
    assert r["backend"] == backend
    return r


def close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b)) + ATOL


def disagreements(ours: dict, theirs: dict, keep=lambda key: True) -> list:
    assert set(ours) == set(theirs), sorted(set(ours) ^ set(theirs))[:10]
    return [(k, ours[k], theirs[k]) for k in sorted(ours) if keep(k) and not close(ours[k], theirs[k])]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_every_probe_agrees_with_torch_on_the_same_weights_and_batches(results, backend):
    torch_, other = result(results, "torch"), result(results, backend)
    full = torch_["probes"]["full"]
    # the full preset: every probe (Hessian included) at every step of a 3-step fit from the same weights
    assert {k.split("|")[1] for k in full} >= {"loss", "gradients", "logits", "zero_grad", "sample_loss", "scales",
                                               "activations", "update", "preact_step", "adam_eps",
                                               "hessian"}
    assert disagreements(full, other["probes"]["full"]) == []


def test_raw_inputs_clip_on_torch_and_jax_and_not_on_tensorflow(results):
    """Raw 0..255 inputs saturate the softmax. Keras clips the probability cross-entropy to
    [eps, 1 - eps] on torch and JAX (exactly zero gradients), but on TensorFlow computes it from the
    softmax's own logits: no clip, no zero gradient, a finite loss. The probes record what each
    backend computes, so they agree where the backends agree and differ where they differ."""
    torch_ = result(results, "torch")
    raw = torch_["probes"]["raw"]
    assert raw["0|zero_grad|share_wrong"] > 0.25 and torch_["probes"]["clip"] == pytest.approx(1e-7)
    if missing("jax") is None:
        assert disagreements(raw, result(results, "jax")["probes"]["raw"]) == []
    if missing("tensorflow") is None:
        tf = result(results, "tensorflow")
        forward = ("|logits|max_abs", "|logits|median_range", "|scales|", "|saturation|", "|logits|pred_share")
        assert disagreements(raw, tf["probes"]["raw"], keep=lambda k: k.startswith("0|") and
                             any(f in k for f in forward)) == []
        assert tf["probes"]["clip"] == 0.0
        assert all(v == 0.0 for k, v in tf["probes"]["raw"].items() if k.endswith("zero_grad|share_wrong"))
        assert all(v > 0 for k, v in tf["probes"]["raw"].items() if k.endswith("gradients|total.norm"))


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_compiled_probes_are_shared_only_by_models_built_alike(results, backend):
    """The probes' computations are compiled once per model structure (``_compiled.signature``): a model
    built the same way (other weights) shares them, and the raw-input run of
    test_raw_inputs_clip_on_torch_and_jax_and_not_on_tensorflow did (its probes agree with torch's);
    another width, activation or loss does not, nor do two lambdas (alike in a configuration) or two
    subclassed models (code outside any configuration: each shares with itself only)."""
    assert result(results, backend)["sharing"] == {
        "the same build, other weights": True, "other units": False, "another activation": False,
        "two lambdas": False, "another loss": False, "a subclassed model and itself": True,
        "two subclassed models": False}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_sigmoid_binary_crossentropy_is_the_backends_own(results, backend):
    """A sigmoid output under binary cross-entropy, a quarter of the samples confidently wrong: the probes'
    loss at step 0 is Keras's own evaluate on the same rows and weights on every backend. That loss differs
    between backends as the softmax's does: clipped on torch and JAX (most samples in the clip, exactly zero
    gradient), from the sigmoid's logits on TensorFlow (no clip: the wrong samples' loss is their logit)."""
    r = result(results, backend)["sigmoid"]
    assert r["probe"] == pytest.approx(r["keras"], rel=1e-5), r
    if backend == "tensorflow":
        assert r["zero_share"] < 0.05, r
        if missing("torch") is None:
            assert r["keras"] > 2 * result(results, "torch")["sigmoid"]["keras"]
    else:
        assert r["zero_share"] > 0.5, r


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_recorded_loss_is_kerass_reported_loss_and_training_is_unchanged(results, backend):
    r = result(results, backend)
    for jit, run in r["losses"].items():   # on TensorFlow also with jit_compile=True (XLA)
        assert run["watched"] == run["plain"], (jit, run)   # bit for bit: the callback changes nothing
        # ours: the sum of the batch losses times their sizes over the samples (Keras's loss tracker)
        assert run["recorded"] == pytest.approx(run["watched"], rel=1e-6), (jit, run)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_the_first_batch_whose_loss_is_not_finite_is_the_diverged_step(results, backend):
    r = result(results, backend)
    for k, run in r["diverged"].items():   # Keras's batch logs first show a loss that is not finite at the planted batch
        assert run == {"keras": int(k), "status": "diverged", "recorded": int(k)}, (k, run)


def causes(found):
    return {i for i, role in found if role == "cause"}


# The seed-000 model on synthetic Fashion-like images, raw pixels (0..255) beside /255 in one study: the finding
# ids and roles per backend. The root cause is the same on every backend: the input-scale check, named because
# the run shows its consequence (a softmax saturated before the first step: median logit range ~180 against
# 15.9). The mechanism differs, because Keras's losses differ: on torch and JAX the probability cross-entropy
# clips to [1e-7, 1 - 1e-7], the saturated samples get an exactly zero gradient (clipped-zero-gradient) and
# training stalls with predictions on one class (class-collapse), both consequences of the input scale. On
# TensorFlow the loss reads the softmax's own logits (output._keras_logits): no clip, no clipped zero gradient,
# a loss of ~200 that Adam brings down; what is left is samples learned with full confidence (a note).
SEED000 = {"1/255": {"no-pathology": "note"}}
SEED000_RAW = {
    "torch": {"input-scale": "cause", "clipped-zero-gradient": "consequence", "class-collapse": "consequence"},
    "jax": {"input-scale": "cause", "clipped-zero-gradient": "consequence", "class-collapse": "consequence"},
    "tensorflow": {"input-scale": "cause", "zero-gradient-correct": "note"},
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_seed000_raw_pixels_against_scaled(results, backend):
    """/255 has no cause on any backend; raw pixels name the input scale as the cause on every backend,
    the clipped zero gradient (the mechanism) where Keras clips: torch and JAX."""
    found = result(results, backend)["seed000"]
    assert dict(found["1/255"]) == SEED000["1/255"], found
    assert dict(found["1"]) == SEED000_RAW[backend], found


def test_seed000_scaled_findings_are_the_same_on_every_backend(results):
    present = [result(results, b)["seed000"]["1/255"] for b in BACKENDS if missing(b) is None]
    assert all({i for i, _ in f} == {i for i, _ in present[0]} for f in present), present


def test_import_on_an_unusable_keras_says_what_to_do_in_one_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # an unsupported backend: one line, and the script goes on undiagnosed (exit 0); a Keras that cannot be
    # imported: one line and exit 1 (the user's script could not run either)
    cases = [({"KERAS_BACKEND": "numpy"}, "import scalelab.keras", "backend is not supported: set KERAS_BACKEND", 0),
             # Keras's default backend with TensorFlow not importable: the traceback a user got before
             ({}, "import sys; sys.modules['tensorflow'] = None; import scalelab.keras",
              "pip install 'scalelab[tensorflow]'", 1)]
    for extra, code, says, rc in cases:
        run_env = {k: v for k, v in env.items() if k != "KERAS_BACKEND"} | extra
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=run_env)
        lines = [line for line in r.stderr.splitlines() if line.startswith("scalelab.keras:")]
        assert r.returncode == rc and "Traceback" not in r.stderr and len(lines) == 1 and says in lines[0], r.stderr


# ---------------------------------------------------------------- issue 29 on TensorFlow and JAX

@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_crash_matrix_never_breaks_fit(results, backend):
    """Issue 29's Keras crash matrix (tests/keras_crash_cases.py, the cases
    test_attach_crash_matrix.py runs on torch), on the backends where Keras compiles the step:
    no exception escapes fit, the losses equal those without the callback bit for bit (probes
    none and standard), a report is printed, and the usual shapes are probed with no "not
    probed" line. The partly probed cases are torch's, for the same reasons (several inputs or
    outputs, a 1-D input); each says so in one line."""
    from keras_crash_cases import KERAS_PARTLY_PROBED, cases_on

    crash = result(results, backend)["crash"]
    assert sorted(crash) == cases_on(backend)
    for case, r in crash.items():
        assert "error" not in r, (case, r.get("error"))
        for probes in ("none", "standard"):
            assert r[probes] == r["plain"], (case, probes, r)   # bit-identical
            out = r[f"out_{probes}"]
            assert out.startswith("scalelab: ") and "Traceback" not in out, (case, out)
            if probes == "standard":   # what is not probed is said, never silently dropped
                assert ("not probed" in out) == (case in KERAS_PARTLY_PROBED), (case, out)


@pytest.mark.parametrize("backend", ["tensorflow"])
def test_gallery_programs_name_the_same_root_cause(results, backend):
    """A few of examples/gallery/'s Keras programs (tests/keras_backend_worker.py GALLERY), as
    test_diagnose_gallery.py runs them on torch: the broken program's first cause is its
    labelled root cause, its fixed twin gets none."""
    gallery = result(results, backend)["gallery"]
    assert gallery, "no gallery program ran"
    for name, r in gallery.items():
        assert r["score"] == ["root cause first", "clean"], (name, r)
