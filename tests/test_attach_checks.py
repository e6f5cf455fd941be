"""The checks before the first step and the one-run rules, on plain data: each threshold
planted on both sides of it, each reference against an independent computation (torch's
own softmax/log-softmax/sigmoid, closed-form entropies, a brute-force minimum)."""

import math

import numpy as np
import pytest
import torch

from scalelab._explain import run_rules
from scalelab._explain._view import LevelView
from scalelab._spec import ProbesSpec
from scalelab.attach import _checks as C
from scalelab.attach import _checks_loop as CL
from scalelab.attach._model import ModelDesc
from scalelab.attach._one_run import label_references, labels_sorted, unit_states
from scalelab.attach._session import trial_spec


def desc(**kw):
    base = dict(framework="keras", output_units=3, output_activation="softmax", output_layer="out",
                loss="sparse_categorical_crossentropy", optimizer="Adam", hyper={"learning_rate": 1e-3})
    return ModelDesc(**{**base, **kw})


def ids(found):
    return [f.id for f in found]


def test_output_activation_read_off_the_values():
    z = torch.randn(64, 4, generator=torch.Generator().manual_seed(0)) * 3
    assert C.infer_output_activation(torch.softmax(z, 1).numpy()) == "softmax"
    assert C.infer_output_activation(torch.log_softmax(z, 1).numpy()) == "log_softmax"
    assert C.infer_output_activation(torch.sigmoid(z).numpy()) == "sigmoid"
    assert C.infer_output_activation(torch.relu(z).numpy()) == "relu"
    assert C.infer_output_activation(z.numpy()) == "linear"


@pytest.mark.parametrize("act,loss,logits,fires", [
    ("softmax", "sparse_categorical_crossentropy", False, False),
    ("sigmoid", "categorical_crossentropy", False, True),
    ("linear", "sparse_categorical_crossentropy", False, True),
    ("linear", "sparse_categorical_crossentropy", True, False),
    ("softmax", "sparse_categorical_crossentropy", True, True),       # softmax twice
    ("sigmoid", "binary_crossentropy", False, False),
    ("relu", "binary_crossentropy", False, True),
])
def test_output_and_loss(act, loss, logits, fires):
    d = desc(output_activation=act, loss=loss, from_logits=logits)
    assert ("output-loss-mismatch" in ids(C.check_output_and_loss(d, np.array([0, 1, 2])))) == fires


def test_softmax_on_one_unit_is_a_cause_whatever_the_loss():
    f = C.check_output_and_loss(desc(output_units=1, loss="binary_crossentropy"), np.array([0, 1]))
    assert ids(f) == ["output-loss-mismatch"] and f[0].role == "cause" and 'Dense(1, activation="sigmoid")' in f[0].text


def test_bounded_output_range_share_on_both_sides():
    d = desc(output_activation="sigmoid", output_units=1, loss="mse")
    n = 1000
    below = np.r_[np.full(40, 2.0), np.full(n - 40, 0.5)]   # 4% out of [0, 1]
    above = np.r_[np.full(60, 2.0), np.full(n - 60, 0.5)]   # 6%
    assert C.check_output_and_loss(d, below) == []
    f = C.check_output_and_loss(d, above)
    assert ids(f) == ["output-loss-mismatch"] and f[0].evidence["targets_out_of_range"] == pytest.approx(0.06)


def test_input_scale_and_offset_on_both_sides():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 5))
    unit = z / np.sqrt((z ** 2).mean())                            # RMS exactly 1
    assert ids(C.check_arrays(desc(), 9.9 * unit, None, False)) == []
    f = C.check_arrays(desc(), 10.1 * unit, None, False)
    assert ids(f) == ["input-scale"] and f[0].evidence["input_rms"] == pytest.approx(10.1)
    s = (z - z.mean(0)) / z.std(0)
    assert "input-offset" not in ids(C.check_arrays(desc(), 0.1 * s + 0.9, None, False))   # |mean|/std 9
    assert "input-offset" in ids(C.check_arrays(desc(), 0.1 * s + 1.1, None, False))       # 11


def test_target_scale_and_nonfinite():
    y = np.random.default_rng(0).normal(size=300)
    y = y / np.sqrt((y ** 2).mean())
    d = desc(loss="mse", output_activation="linear", output_units=1)
    assert ids(C.check_arrays(d, None, 9.9 * y, True)) == []
    assert ids(C.check_arrays(d, None, 10.1 * y, True)) == ["target-scale"]
    x = np.ones((10, 3))
    x[2, 1] = np.nan
    assert "non-finite-data" in ids(C.check_arrays(d, x, None, False))


@pytest.mark.parametrize("lr,fires", [(0.09, False), (0.11, True)])
def test_adam_rate_against_the_weights_size(lr, fires):
    # weights of RMS 0.1: a step of lr ≥ 0.1 rewrites them
    assert bool(C.check_learning_rate(desc(hyper={"learning_rate": lr}), 0.1, 100)) == fires


@pytest.mark.parametrize("lr,fires", [(1.1e-5, False), (0.9e-5, True)])
def test_adam_rate_too_small_for_the_run(lr, fires):
    # 100 steps of at most lr each against a tenth of RMS 0.01: lr·100 < 1e-3
    assert bool(C.check_learning_rate(desc(hyper={"learning_rate": lr}), 0.01, 100)) == fires


def test_labels():
    d = desc()
    assert ids(C.check_labels(d, np.zeros(50))) == ["one-class-labels"]
    assert ids(C.check_labels(d, np.array([0, 1, 3]))) == ["labels-out-of-range"]
    assert ids(C.check_labels(d, np.array([0.5, 1.0, 2.0]))) == ["fractional-labels"]
    assert ids(C.check_labels(desc(loss="binary_crossentropy", output_units=1, output_activation="sigmoid"),
                              np.array([1, 2, 1]))) == ["labels-out-of-range"]
    # imbalance stated where the majority share is closer to one class than to a balanced split: (1 + 1/C) / 2
    C3 = (1 + 1 / 3) / 2
    n = 300
    under = np.r_[np.zeros(int(n * C3) - 3), np.ones(n - int(n * C3) + 3) * 2]
    over = np.r_[np.zeros(int(n * C3) + 3), np.ones(n - int(n * C3) - 3) * 2]
    assert ids(C.check_labels(d, under)) == [] and ids(C.check_labels(d, over)) == ["class-imbalance"]
    assert C.check_labels(d, over)[0].role == "note"


def test_linear_stack_and_symmetric_init():
    d = desc(linear_pairs=[("h1", "h2")])
    assert ids(C.check_linear_stack(d)) == ["no-nonlinearity"] and C.check_linear_stack(desc()) == []
    assert ids(C.check_init(desc(), [("h", 0.0), ("out", 0.0)])) == ["symmetric-init"]
    assert C.check_init(desc(), [("h", 0.1), ("out", 0.0)]) == []   # a zero output layer is fine


def test_loop_checks():
    d = desc(framework="pytorch", loss="mse")
    assert ids(CL.check_target_shape(d, (32, 1), (32,))) == ["target-shape-broadcast"]
    assert CL.check_target_shape(d, (32, 1), (32, 1)) == [] and CL.check_target_shape(d, (32,), (32,)) == []
    assert ids(CL.check_zero_grad(d, 9, 10)) == ["missing-zero-grad"] and CL.check_zero_grad(d, 0, 10) == []
    assert ids(CL.check_optimizer_params(d, 4, 0, 4)) == ["optimizer-params"] and CL.check_optimizer_params(d, 4, 4, 0) == []


def test_label_references_against_closed_forms():
    d = desc(output_units=2)
    y = np.r_[np.zeros(75), np.ones(25)].astype(int)
    r = label_references(d, y)
    assert r["label_entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert r["majority_share"] == 0.75 and r["log_classes"] == pytest.approx(math.log(2))
    # weighted: the best constant prediction, found by brute force over q
    w = np.where(y == 1, 3.0, 1.0)
    qs = np.linspace(0.001, 0.999, 9999)
    brute = min(np.mean(w * -np.log(np.where(y == 1, q, 1 - q))) for q in qs)
    assert label_references(d, y, w)["label_entropy"] == pytest.approx(brute, rel=1e-5)
    t = np.random.default_rng(0).normal(size=200)
    assert label_references(desc(loss="mse"), t)["target_var"] == pytest.approx(t.var())


def test_sorted_labels_and_unit_states():
    y = np.sort(np.random.default_rng(0).integers(0, 3, 96))
    batches = [y[i:i + 16] for i in range(0, 96, 16)]
    assert labels_sorted(batches)
    assert not labels_sorted([np.random.default_rng(1).permutation(y)[i:i + 16] for i in range(0, 96, 16)])
    a = np.ones((1, 10, 4))
    a[0, :, :3] = 0.0                                   # 3 of 4 units zero on every row
    z = np.zeros((1, 100, 2))
    z[0, :, 0] = 3.0                                    # tanh'(3) < 5% of max: one unit saturated on all rows
    s = unit_states({"act0": a, "pre1": z}, [(0, "h0", "relu"), (1, "h1", "tanh")])
    assert s == {"act0.dead_frac": 0.75, "pre1.saturated_frac": 0.5}


def view(series: dict, final_loss: float, model: dict | None = None) -> LevelView:
    spec = trial_spec("t", {}, {"loss": {"name": "crossentropy"}}, ProbesSpec(preset="none"))
    v = LevelView(level={}, spec=spec, n_seeds=1, final_train_loss=final_loss, envs=[{"model": model or {}}])
    v.series = {("attach", k): {0: np.array([val])} for k, val in series.items()}
    v.train_loss_by_seed = [[final_loss]]
    v.epochs_by_seed = [[{"epoch": 1, "train_loss": final_loss}]]
    return v


@pytest.mark.parametrize("share,fires", [(0.94, False), (0.96, True)])
def test_loss_at_chance_on_both_sides(share, fires):
    H = math.log(3)
    v = view({"label_entropy": H, "log_classes": H, "n_classes": 3.0}, share * H)
    assert ("loss-at-chance" in ids(run_rules(v, v))) == fires


@pytest.mark.parametrize("ratio,fires", [(10 ** -2.9, False), (10 ** -3.1, True)])
def test_vanishing_gradients_on_both_sides(ratio, fires):
    v = view({"layer0.grad_rms": ratio, "layer1.grad_rms": 0.1, "layer2.grad_rms": 1.0}, 0.1)
    assert ("vanishing-gradients" in ids(run_rules(v, v))) == fires


@pytest.mark.parametrize("dead,fires", [(0.49, False), (0.51, True)])
def test_dead_units_on_both_sides(dead, fires):
    v = view({"act0.dead_frac": dead}, 0.1, {"layers": [{"name": "hidden", "kind": "dense"}]})
    found = run_rules(v, v)
    assert ("dead-units" in ids(found)) == fires
    if fires:
        assert "'hidden'" in next(f.text for f in found if f.id == "dead-units")


INPUT_SCALE_CHECK = {"id": "input-scale", "role": "cause", "text": "the inputs have RMS 100; fix: X = X / 255.0",
                     "evidence": {"fired": "input_rms", "input_rms": 100.0}}


def scaled_level(name: str, checks: list, logit_range: float, probe_loss: float = 9.0) -> LevelView:
    spec = trial_spec("t", {}, {"loss": {"name": "crossentropy"}}, ProbesSpec(preset="none"))
    v = LevelView(level={"case": name}, spec=spec, n_seeds=1, final_train_loss=0.5, envs=[{"checks": checks}])
    v.series = {("logits", "median_range"): {0: np.array([logit_range]), 9: np.array([1.0])},
                ("loss", "probe_batch"): {0: np.array([probe_loss])},
                **{("logits", f"pred_share.{c}"): {0: np.array([0.1])} for c in range(10)}}
    v.train_loss_by_seed, v.epochs_by_seed = [[0.5]], [[{"epoch": 1, "train_loss": 0.5}]]
    return v


@pytest.mark.parametrize("logit_range,fires", [(15.0, False), (17.0, True)])
def test_input_scale_is_said_beside_other_levels_when_the_run_saturates_the_softmax(logit_range, fires):
    """In a study of several levels the input-scale check is a cause only where the run shows its
    consequence: the median logit range at the first probed step past -ln(float32 eps) = 15.94."""
    from scalelab._explain import explain_views

    raw, other = scaled_level("raw", [INPUT_SCALE_CHECK], logit_range), scaled_level("scaled", [], 40.0)
    found = explain_views([raw, other], [raw])
    got = [f for f in found if f.id == "input-scale"]
    assert bool(got) == fires, [(f.id, f.text) for f in found]
    if fires:
        f = got[0]
        assert f.role == "cause" and f.evidence["fired"] == "median_logit_range"
        assert f.evidence["median_logit_range"] == 17.0 and f.evidence["ln_k"] == pytest.approx(math.log(10))
        assert "median logit range on the probe batch is 17" in f.text and "probe loss is 9.0" in f.text
        assert f.text.index("this run shows it") < f.text.index("fix: X = X / 255.0")
    # a saturated softmax without the check (the inputs at unit scale) is not blamed on the input scale
    assert "input-scale" not in ids(explain_views([raw, other], [other]))
    # alone (a study of one level) the check is said whatever the run shows, as before any rule compares
    alone = scaled_level("raw", [INPUT_SCALE_CHECK], logit_range)
    assert "input-scale" in ids(run_rules(alone, alone))


def test_unsupported_keras_backend_is_one_line(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("keras")
    env = {**__import__("os").environ, "KERAS_BACKEND": "numpy"}
    code = ("import keras, scalelab.keras\n"
            "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
            "cb = scalelab.keras.Diagnose('x')\n"
            "print('ran', cb.findings)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ours = [line for line in r.stderr.splitlines() if line.startswith("scalelab")]
    assert len(ours) == 1 and "set KERAS_BACKEND to one of" in ours[0] and "Traceback" not in r.stderr
    assert r.stdout.strip() == "ran []"
