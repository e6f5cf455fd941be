"""The curvature rule: the top Hessian eigenvalue against plain SGD's stability limit, and
an exactly flat loss surface."""

import pytest

from explain_helpers import SPEC, good_and_bad_regression, view
from scalelab._explain._curvature import rule_curvature


def test_curvature_rules():
    good, bad = good_and_bad_regression()
    spec = {"model": {"batchnorm": True}, "optim": {"name": "sgd", "lr": 0.1, "lr_mult": [1.0, 1.0]}, **SPEC}
    (c,) = rule_curvature(bad, good)   # 27.5 > 2 / lr = 20
    assert c.id == "sharp-curvature" and c.evidence["sgd_stability_limit"] == pytest.approx(20)
    assert rule_curvature(good, good)[0].id == "curvature"
    flat = view({"t": "raw"}, spec, {("hessian", "max_eigenvalue"): {0: [0.0, 0.0], 10: [0.0, 0.0]}})
    assert rule_curvature(flat, good)[0].id == "flat-loss-surface"

