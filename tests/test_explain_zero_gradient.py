"""The zero-gradient rule: samples in a clipped cross-entropy's flat tails, the plateau they
imply and a batch gradient that stopped."""

import math

import pytest

from explain_helpers import SPEC, view
from scalelab._explain._zero_gradient import rule_zero_gradient


def test_zero_gradient_rule_reports_only_what_the_numbers_show():
    ref = view({"s": "1/255"}, SPEC, {("zero_grad", "share"): {0: [0, 0], 100: [0.01, 0.0]}})
    bad = view({"s": 1}, SPEC, {("zero_grad", "share"): {0: [0.88, 0.9], 100: [1.0, 1.0]},
                                ("logits", "p_true_below_clip"): {0: [0.8, 0.84], 100: [0.9, 0.9]},
                                ("logits", "p_true_above_1-clip"): {0: [0.08, 0.06], 100: [0.1, 0.1]},
                                ("gradients", "total.norm"): {0: [3.0, 2.0], 100: [0.0, 0.0]}},
               final_loss=-math.log(1e-7) * 0.9, losses=[[14.5, 14.5], [14.4, 14.5]])
    (f,) = rule_zero_gradient(bad, ref)
    assert f.id == "clipped-zero-gradient" and f.evidence["step0_share"] == pytest.approx(0.89)
    assert f.evidence["first_step_all_zero"] == 100 and f.evidence["batch_gradient_exactly_zero_from_step"] == 100
    assert f.evidence["seeds_with_frozen_weights"] == 1
    assert "89%" in f.text and "1 of 2 seeds stopped" in f.text and "at most 0.5%" in f.text
    assert rule_zero_gradient(ref, ref) == []
    # below the threshold: silent
    mild = view({"s": 2}, SPEC, {("zero_grad", "share"): {0: [0.2, 0.1]}})
    assert rule_zero_gradient(mild, ref) == []
