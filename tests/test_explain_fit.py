"""The rules on final metrics: regression predictions that explain nothing
(predicts-the-mean) and batch norm's train/eval gap."""

import pytest

from explain_helpers import good_and_bad_regression
from scalelab._explain._fit import rule_batchnorm_train_eval_gap, rule_predicts_the_mean


def test_regression_rules():
    good, bad = good_and_bad_regression()
    (f,) = rule_predicts_the_mean(bad, good)
    assert f.evidence["test_r2_median"] == pytest.approx(-0.015) and "R² -0.015" in f.text
    assert rule_predicts_the_mean(good, good) == []
    (gap,) = rule_batchnorm_train_eval_gap(bad, good)
    assert gap.evidence["ratio"] == pytest.approx(3.5e-3 / 1.5e-4)
    assert rule_batchnorm_train_eval_gap(good, good) == []
