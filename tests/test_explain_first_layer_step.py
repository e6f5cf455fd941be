"""The small-first-layer-step rule: one update moves the first layer's pre-activations ≥ 2×
less than at the reference, though the weight step is the same size: smaller inputs."""

import pytest

from explain_helpers import SPEC, view
from scalelab._explain._first_layer_step import rule_first_layer_step

RAW = {**SPEC, "input": {"transform": "none"}}


def series(pre, w):
    return {("preact_step", "pre0.rms_change"): {0: [pre, pre], 10: [pre, pre]},
            ("update", "dense0.W.rms"): {0: [w, w], 10: [w, w]}}


def test_first_layer_step_rule():
    ref = view({"s": "1"}, RAW, series(0.04, 3e-4))
    small = view({"s": "1/255"}, SPEC, series(0.01, 4e-4))
    (f,) = rule_first_layer_step(small, ref)
    assert f.id == "small-first-layer-step" and f.evidence["ratio"] == pytest.approx(4)
    assert f.evidence["input_scale_ratio"] == pytest.approx(255)
    assert "about the same size (0.0004 vs 0.0003 RMS)" in f.text and "255.00× smaller" in f.text
    assert rule_first_layer_step(ref, ref) == [] and rule_first_layer_step(ref, small) == []
    # without the update probe the weight step is not compared; less than 2× is silent
    (g,) = rule_first_layer_step(view({"s": "x"}, SPEC, {("preact_step", "pre0.rms_change"): {0: [0.01]}}), ref)
    assert "first-layer weight step" not in g.text and "weight_step_rms" not in g.evidence
    assert rule_first_layer_step(view({"s": "y"}, RAW, series(0.03, 3e-4)), ref) == []
