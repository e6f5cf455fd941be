"""The rules of issue 16 on synthetic probe records, each on both sides of its threshold;
roles (cause before consequence), the zero-gradient split and the reference's seed range."""

import math

import numpy as np
import pytest

from explain_helpers import SPEC, view
from scalelab._explain import CAUSE, CONSEQUENCE, NOTE, explain_views
from scalelab._explain._class_collapse import rule_class_collapse
from scalelab._explain._conditioning import rule_ill_conditioning
from scalelab._explain._curvature import rule_curvature
from scalelab._explain._divergence import rule_loss_divergence
from scalelab._explain._large_logits import rule_large_logits
from scalelab._explain._layer_imbalance import rule_layer_imbalance
from scalelab._explain._saturation import rule_saturated_units
from scalelab._explain._targets import rule_unscaled_targets
from scalelab._explain._vanishing import rule_vanishing_error_signal
from scalelab._explain._zero_gradient import rule_zero_gradient

STEPS = (0, 1, 3, 10, 30, 100)


def series(values):
    """{step: [seed values]} over STEPS from one value per step (two seeds, equal)."""
    return {s: [v, v] for s, v in zip(STEPS, values)}


def flat(v, steps=STEPS):
    return {s: [v, v] for s in steps}


# -- divergence with a finite loss

def test_loss_divergence_fires_when_the_probe_loss_doubles_and_not_below():
    ref = view({"lr": 0.01}, SPEC, {("loss", "probe_batch"): series([2.3, 2.2, 2.0, 1.5, 1.0, 0.5])})
    up = view({"lr": 1}, SPEC, {("loss", "probe_batch"): series([2.3, 2.4, 4.7, 3.0, 2.9, 2.8])})
    (f,) = rule_loss_divergence(up, ref)
    assert f.evidence["loss_step"] == 3 and "at step 3" in f.text and "4.7" in f.text
    assert f.evidence["reference_probe_loss_at_step"] == pytest.approx(2.0)      # the reference at the same step
    below = view({"lr": 0.5}, SPEC, {("loss", "probe_batch"): series([2.3, 2.4, 4.3, 3.0, 2.9, 2.8])})   # 1.87×
    assert rule_loss_divergence(below, ref) == []


def test_loss_divergence_fires_on_early_update_ratios_of_a_tenth():
    ref = view({"lr": 0.01}, SPEC, {("update", "dense0.W.ratio"): flat(0.005)})
    big = view({"lr": 1}, SPEC, {("update", "dense0.W.ratio"): series([0.3, 0.2, 0.15, 0.01, 0.001, 0.001]),
                                 ("update", "dense0.b.ratio"): flat(1e30)})            # zero biases: never read
    (f,) = rule_loss_divergence(big, ref)
    # the first tenth of training: steps 0, 1, 3, 10, median of 0.3, 0.2, 0.15, 0.01
    assert f.evidence["update_param"] == "dense0.W" and f.evidence["update_ratio_median"] == pytest.approx(0.175)
    assert "0.175 of its own norm" in f.text and "0.005" in f.text and "steps 0–10" in f.text
    late = view({"lr": 0.2}, SPEC, {("update", "dense0.W.ratio"): series([0.09, 0.09, 0.09, 0.5, 0.5, 0.5])})
    assert rule_loss_divergence(late, ref) == []     # ≥ 0.1 only after the first tenth of training


# -- large logits under a from-logits loss

LOGITS = {"loss": {"from_logits": True}}
CLASSES = {("logits", f"pred_share.{c}"): flat(0.1) for c in range(10)}


def logit_level(name, loss, acc, top5, rng=150.0):
    return view({"s": name}, LOGITS, {**CLASSES, ("loss", "probe_batch"): flat(loss),
                                      ("sample_loss", "accuracy"): flat(acc),
                                      ("sample_loss", "top5pct_share"): flat(top5),
                                      ("logits", "median_range"): flat(rng)})


def test_large_logits_needs_loss_above_ln_k_ordinary_accuracy_and_a_few_samples():
    ref = logit_level("ref", 0.4, 0.9, 0.2, 4.0)
    (f,) = rule_large_logits(logit_level("raw", 6.3, 0.76, 0.53), ref)
    assert f.evidence["step"] == 0 and "6.3" in f.text and "ln 10 = 2.30" in f.text and "53%" in f.text
    # quoted from the first step since which it held (the loss passed ln 10 at step 10)
    grows = logit_level("grows", 6.3, 0.76, 0.53)
    grows.series[("loss", "probe_batch")] = {s: np.array([x, x]) for s, x in zip(STEPS, [1.0, 1.5, 2.0, 3.0, 5.0, 6.3])}
    (g,) = rule_large_logits(grows, ref)
    assert g.evidence["step"] == 10 and g.evidence["probe_loss"] == 3.0 and "at step 10" in g.text
    assert f.evidence["reference_median_logit_range"] == 4.0
    assert rule_large_logits(logit_level("spread", 6.3, 0.76, 0.45), ref) == []       # no few samples carry it
    assert rule_large_logits(logit_level("low", 2.2, 0.76, 0.6), ref) == []           # below ln K
    assert rule_large_logits(logit_level("chance", 6.3, 0.15, 0.6), ref) == []        # accuracy < 2/K
    clipped = view({"s": "c"}, SPEC, logit_level("x", 6.3, 0.76, 0.6).series)          # a clipped softmax: not this rule
    assert rule_large_logits(clipped, ref) == []


# -- saturated units, on the units

def test_saturated_units_fire_at_the_step_half_the_units_saturate():
    tanh = {**SPEC, "model": {"activation": "tanh"}}
    ref = view({"s": "ref"}, tanh, {("saturation", "pre0.saturated_frac"): flat(0.02),
                                    ("saturation", "act0.rel_derivative"): flat(0.6),
                                    ("gradients", "dense0.W.norm"): flat(1.0)})
    sat = view({"s": "big"}, tanh, {("saturation", "pre0.saturated_frac"): series([0.1, 0.2, 0.4, 0.55, 0.7, 0.7]),
                                    ("saturation", "act0.rel_derivative"): series([0.5, 0.4, 0.3, 0.2, 0.1, 0.1]),
                                    ("gradients", "dense0.W.norm"): flat(3.0)})   # large gradient all the same
    (f,) = rule_saturated_units(sat, ref)
    assert f.evidence["step"] == 10 and "at step 10, 55%" in f.text and "20% of its peak" in f.text
    assert f.evidence["reference_saturated_share"] == pytest.approx(0.02) and "weight-gradient norm is 3" in f.text
    below = view({"s": "mid"}, tanh, {("saturation", "pre0.saturated_frac"): flat(0.49),
                                      ("saturation", "act0.rel_derivative"): flat(0.4)})
    assert rule_saturated_units(below, ref) == []


# -- vanishing error signal

def error_level(name, rms, steps=STEPS):
    return view({"s": name}, SPEC, {("error_signal", f"pre{i}.error_rms"): flat(x, steps) for i, x in enumerate(rms)})


def test_vanishing_error_signal_needs_two_orders_of_magnitude_and_depth():
    ref = error_level("ref", [0.2, 0.5, 1.0])
    (f,) = rule_vanishing_error_signal(error_level("deep", [5e-4, 0.02, 1.0]), ref)
    assert f.role == CAUSE and f.evidence["ratio"] == pytest.approx(5e-4) and "0.0005×" in f.text
    assert f.evidence["reference_ratio"] == pytest.approx(0.2)
    assert rule_vanishing_error_signal(error_level("mild", [0.011, 0.1, 1.0]), ref) == []        # 1.1e-2
    assert rule_vanishing_error_signal(error_level("shallow", [1e-5, 1.0]), ref) == []         # one hidden layer


# -- unscaled regression targets

def target_level(name, tm, tsd, om=0.0, osd=0.8, reach=None):
    om_series = {s: [om, om] for s in STEPS}
    if reach is not None:
        om_series = {s: [tm if s >= reach else om] * 2 for s in STEPS}
    return view({"t": name}, {"loss": {"name": "mse"}},
                {("scales", "output.mean"): om_series, ("scales", "output.std"): flat(osd),
                 ("scales", "target.mean"): flat(tm), ("scales", "target.std"): flat(tsd)})


def test_unscaled_targets_fire_an_order_of_magnitude_either_way():
    ref = target_level("std", 0.0, 1.0)
    (f,) = rule_unscaled_targets(target_level("raw", 152.0, 78.0, reach=30), ref)
    # size over the larger of the outputs' std (0.8) and unit scale (1)
    assert f.evidence["ratio"] == pytest.approx(152) and f.evidence["mean_reached_step"] == 30
    assert "152× apart" in f.text and "at step 30" in f.text
    # the R² trajectory against the reference's, per epoch (median over seeds)
    raw, std = target_level("raw", 152.0, 78.0), ref
    raw.test_r2_by_seed = [[-5.0, -2.0, -1.0, 0.1], [-4.0, -3.0, -0.5, 0.2]]
    std.test_r2_by_seed = [[0.3, 0.4, 0.45, 0.5], [0.3, 0.4, 0.45, 0.5]]
    (h,) = rule_unscaled_targets(raw, std)
    assert h.evidence["test_r2_by_epoch"] == pytest.approx([-4.5, -2.5, -0.75, 0.15])
    assert "test R² by epoch (median over seeds) -4.5 → -0.75 → 0.15" in h.text and "0.3 → 0.45 → 0.5" in h.text
    (g,) = rule_unscaled_targets(target_level("tiny", 0.001, 0.002, om=0.0, osd=0.5), ref)
    assert "far smaller" in g.text and g.evidence["ratio"] == pytest.approx(0.004)
    assert rule_unscaled_targets(target_level("x9", 0.0, 9.0), ref) == []           # 9× unit scale
    assert rule_unscaled_targets(target_level("x11", 0.0, 11.0), ref) != []         # 11×
    assert rule_unscaled_targets(target_level("x0.11", 0.0, 0.088), ref) == []      # std 0.11×
    # targets of unit scale and a head whose initial outputs happen to be small: nothing to fix
    assert rule_unscaled_targets(target_level("unit", 0.1, 1.9, osd=0.07), ref) == []


# -- ill-conditioning

def test_ill_conditioning_needs_a_ratio_of_100_and_ten_times_the_reference():
    def lv(name, r):
        return view({"x": name}, SPEC, {("scales", "input.std_ratio"): flat(r)})
    ref = lv("std", 1.0)
    (f,) = rule_ill_conditioning(lv("raw", 2.6e5), ref)
    assert f.evidence["condition_bound"] == pytest.approx(2.6e5 ** 2) and "2.6e+05×" in f.text
    assert rule_ill_conditioning(lv("mild", 90.0), ref) == []
    assert rule_ill_conditioning(lv("pixels", 1e3), lv("pixels/255", 200.0)) == []   # uniform rescaling: same ratio


# -- layer imbalance: a note while the model trains (inside the reference's seed range), a cause when it stalls

def test_layer_imbalance_is_a_note_when_the_model_trains_and_a_cause_when_it_stalls():
    ratios = lambda a, b: {("update", "dense0.W.ratio"): flat(a), ("update", "dense1.W.ratio"): flat(b)}   # noqa: E731
    ref = view({"m": "ref"}, SPEC, {**ratios(5e-3, 4e-3), ("loss", "probe_batch"): series([2.3, 2, 1.5, 1, 0.6, 0.3])})
    ref.final = {"test_acc": np.array([0.86, 0.88])}
    # the head's updates 1250× smaller from update 3 on; accuracy inside the reference's range
    trains = view({"m": "head"}, SPEC, {("update", "dense0.W.ratio"): flat(5e-3),
                                        ("update", "dense1.W.ratio"): series([4e-3, 4e-4, 4e-6, 4e-6, 4e-6, 4e-6]),
                                        ("loss", "probe_batch"): series([2.3, 2, 1.6, 1.2, 0.8, 0.5])})
    trains.final = {"test_acc": np.array([0.86, 0.87])}
    (f,) = rule_layer_imbalance(trains, ref)
    assert f.role == NOTE and f.evidence["imbalance"] == pytest.approx(1250) and "1.25e+03×" in f.text
    assert f.at == 3.5 and "update 3" in f.text and "0.865" in f.text and "0.86 " in f.text
    # the same ratios and loss curve, accuracy below the reference's worst seed: it stalls
    trains.final = {"test_acc": np.array([0.84, 0.85])}
    (g,) = rule_layer_imbalance(trains, ref)
    assert g.role == CAUSE and "training stalls" in g.text and "0.845" in g.text
    stalls = view({"m": "first"}, SPEC, {**ratios(4e-6, 5e-3), ("loss", "probe_batch"): series([2.3, 2.2, 2.1, 2, 1.8, 1.6])})
    stalls.final = {"test_acc": np.array([0.3, 0.35])}
    (g,) = rule_layer_imbalance(stalls, ref)
    assert g.role == CAUSE and "training stalls" in g.text and g.at == 0.5
    assert rule_layer_imbalance(view({"m": "x"}, SPEC, ratios(5e-3, 5.1e-5)), ref) == []    # 98×


# -- binary class collapse

def binary(name, pred, true):
    return view({"c": name}, SPEC, {("logits", "pred_share.0"): flat(0.5), ("logits", "pred_share.1"): flat(0.5),
                                    ("logits", "classes_for_95pct"): {100: pred}, ("logits", "top_class_share"): {100: [0.97, 0.99]},
                                    ("logits", "true_classes_for_95pct"): {100: true}})


def test_binary_collapse_compares_predictions_with_the_labels():
    ref = binary("ref", [2, 2], [2, 2])
    (f,) = rule_class_collapse(binary("l2", [1, 1], [2, 2]), ref)
    assert f.role == CAUSE and "onto one of 2 classes in 2 of 2 seeds" in f.text and "the labels need 2, 2" in f.text
    assert rule_class_collapse(binary("skewed", [1, 1], [1, 1]), ref) == []   # the labels are 95% one class
    assert rule_class_collapse(binary("fine", [2, 2], [2, 2]), ref) == []
    assert rule_class_collapse(binary("half", [1, 2], [2, 2]), ref) == []     # not in more than half the seeds


# -- the zero-gradient split

def test_zero_gradient_on_correct_samples_is_healthy_and_on_misclassified_ones_a_cause():
    ref = view({"s": "ref"}, SPEC, {("zero_grad", "share"): flat(0.0)})
    confident = view({"s": "long"}, SPEC, {("zero_grad", "share"): series([0, 0.1, 0.3, 0.6, 0.8, 0.9]),
                                           ("zero_grad", "share_correct"): series([0, 0.1, 0.3, 0.6, 0.79, 0.88]),
                                           ("zero_grad", "share_wrong"): series([0, 0, 0, 0, 0.01, 0.02])})
    (f,) = rule_zero_gradient(confident, ref)
    assert f.id == "zero-gradient-correct" and f.role == NOTE and "88%" in f.text and "at step 100" in f.text
    stuck = view({"s": "raw"}, SPEC, {("zero_grad", "share"): series([0.1, 0.2, 0.4, 0.5, 0.5, 0.5]),
                                      ("zero_grad", "share_correct"): series([0.05, 0.1, 0.1, 0.1, 0.1, 0.1]),
                                      ("zero_grad", "share_wrong"): series([0.05, 0.1, 0.3, 0.4, 0.4, 0.4])})
    (g,) = rule_zero_gradient(stuck, ref)
    assert g.id == "zero-gradient" and g.evidence["step"] == 3 and "at step 3 (30% misclassified" in g.text
    assert g.evidence["reference_share_at_step"] == 0.0
    below = view({"s": "b"}, SPEC, {("zero_grad", "share"): flat(0.3), ("zero_grad", "share_correct"): flat(0.06),
                                    ("zero_grad", "share_wrong"): flat(0.24)})
    assert rule_zero_gradient(below, ref)[0].id == "zero-gradient-correct"   # 24% misclassified: below a quarter


# -- faithfulness over the rule set

def test_consequences_of_a_divergence_are_labelled_as_consequences():
    ref = view({"lr": "ref"}, SPEC, {("loss", "probe_batch"): series([2.3, 2.2, 2.0, 1.5, 1.0, 0.5]),
                                     ("activations", "act0.dead_frac"): flat(0.02)}, final_loss=0.3)
    bad = view({"lr": "big"}, SPEC, {("loss", "probe_batch"): series([2.3, 5.0, 4.7, 3.0, 2.9, 2.8]),
                                     ("activations", "act0.dead_frac"): series([0.02, 0.3, 0.5, 0.6, 0.6, 0.6])},
               final_loss=2.8)
    fs = explain_views([ref, bad], [bad])
    assert [(f.id, f.role) for f in fs] == [("loss-divergence", CAUSE), ("dead-relu", CONSEQUENCE)]
    assert "a consequence of loss-divergence" in fs[1].text
    # the same dead units without the divergence before them: the cause
    alone = view({"lr": "b"}, SPEC, {("activations", "act0.dead_frac"): series([0.6] * 6)}, final_loss=2.8)
    assert [(f.id, f.role) for f in explain_views([ref, alone], [alone])] == [("dead-relu", CAUSE)]


def test_no_cause_for_a_level_inside_the_reference_seed_range():
    ref = view({"s": "ref"}, SPEC, {("activations", "act0.dead_frac"): flat(0.02)}, final_loss=0.3)
    ref.final = {"test_acc": np.array([0.86, 0.88, 0.90]), "train_loss": np.array([0.3, 0.3, 0.3])}
    inside = view({"s": "in"}, SPEC, {("activations", "act0.dead_frac"): flat(0.5)}, final_loss=0.35)
    inside.final = {"test_acc": np.array([0.87, 0.87, 0.88])}
    fs = explain_views([ref, inside], [inside])
    assert [(f.id, f.role) for f in fs] == [("dead-relu", NOTE), ("no-pathology", NOTE)]
    assert fs[0].evidence["within_reference_seed_range"] and "inside s=ref's seed range" in fs[0].text
    outside = view({"s": "out"}, SPEC, {("activations", "act0.dead_frac"): flat(0.5)}, final_loss=0.5)
    outside.final = {"test_acc": np.array([0.80, 0.84, 0.85])}              # mean 0.83 < 0.86
    assert explain_views([ref, outside], [outside])[0].role == CAUSE


def test_curvature_reports_both_ends_and_never_calls_a_negative_value_top():
    spec = {**SPEC, "optim": {"name": "sgd", "lr": 0.1, "lr_mult": [1.0, 1.0]}}
    ref = view({"t": "ref"}, spec, {("hessian", "max_eigenvalue"): flat(5.0), ("hessian", "min_eigenvalue"): flat(-0.1)})
    raw = view({"t": "raw"}, spec, {("hessian", "max_eigenvalue"): flat(360.0),
                                    ("hessian", "min_eigenvalue"): flat(-355.0)})
    (f,) = rule_curvature(raw, ref)
    assert f.id == "sharp-curvature" and "largest eigenvalue (median over seeds) is 360" in f.text
    assert "most negative eigenvalue is -355" in f.text and "top" not in f.text
    assert f.evidence["sgd_stability_limit"] == pytest.approx(20.0)
    (g,) = rule_curvature(ref, ref)
    assert g.id == "curvature" and math.isclose(g.evidence["min_eigenvalue_first"], -0.1)


def test_dead_units_are_judged_against_a_relu_reference_only():
    from scalelab._explain._dead_relu import rule_dead_relu

    relu = view({"a": "relu"}, SPEC, {("activations", "act0.dead_frac"): flat(0.16)})
    tanh = view({"a": "tanh"}, {**SPEC, "model": {"activation": "tanh"}}, {("activations", "act0.dead_frac"): flat(0.0)})
    assert rule_dead_relu(relu, tanh) == []          # a tanh unit is never exactly zero: no comparison
    healthy = view({"a": "relu2"}, SPEC, {("activations", "act0.dead_frac"): flat(0.05)})
    (f,) = rule_dead_relu(relu, healthy)             # 16% ≥ 2 × 5% + 5 points
    assert f.role == CAUSE and f.evidence["first_step"] == 0
    assert rule_dead_relu(view({"a": "r3"}, SPEC, {("activations", "act0.dead_frac"): flat(0.14)}), healthy) == []
