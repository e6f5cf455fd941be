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



def _quadratic_grows(lam, lr, mu, nesterov, steps=600):
    """scalelab's own momentum chain on f(x) = λx²/2 from x = 1: does |x| grow?"""
    import torch

    from scalelab.optim._chains import apply_updates, momentum

    tx = momentum(lr, mu, nesterov)
    x = {"x": torch.ones(1, 1, 1, dtype=torch.float64)}
    state = tx.init(x)
    for _ in range(steps):
        upd, state = tx.update({"x": lam * x["x"]}, state, x)
        x = apply_updates(x, upd)
    return float(x["x"].abs()) > 1.0


@pytest.mark.parametrize("mu,nesterov", [(0.0, False), (0.5, False), (0.9, False), (0.5, True), (0.9, True)])
def test_stability_limit_separates_converging_from_diverging_momentum_iterations(mu, nesterov):
    """The limit against the optimizer itself: 3% below it the iteration contracts, 3% above it grows."""
    from scalelab._explain._curvature import stability_limit

    lr = 0.1
    limit, _ = stability_limit("momentum", lr, mu, nesterov)
    assert not _quadratic_grows(0.97 * limit, lr, mu, nesterov)
    assert _quadratic_grows(1.03 * limit, lr, mu, nesterov)


def _level(name, top, nesterov=False, momentum=0.9):
    spec = {"optim": {"name": name, "lr": 0.1, "lr_mult": [1.0, 1.0], "momentum": momentum, "nesterov": nesterov},
            **SPEC}
    return view({"t": name}, spec, {("hessian", "max_eigenvalue"): {0: [top, top], 10: [top, top]}})


def test_sharp_curvature_uses_the_momentum_limit_on_both_sides():
    # heavy ball μ = 0.9, lr = 0.1: 2(1 + μ)/lr = 38 (plain SGD's 2/lr = 20 would fire at 30)
    (f,) = rule_curvature(_level("momentum", 30.0), _level("momentum", 30.0))
    assert f.id == "curvature" and f.evidence["sgd_stability_limit"] == pytest.approx(38.0)
    (f,) = rule_curvature(_level("momentum", 40.0), _level("momentum", 30.0))
    assert f.id == "sharp-curvature" and "38" in f.text
    # Nesterov μ = 0.9: 2(1 + μ)/((1 + 2μ)·lr) = 13.57
    (f,) = rule_curvature(_level("momentum", 13.0, nesterov=True), _level("momentum", 13.0, nesterov=True))
    assert f.id == "curvature" and f.evidence["sgd_stability_limit"] == pytest.approx(3.8 / 0.28)
    assert rule_curvature(_level("momentum", 14.0, nesterov=True), _level("momentum", 13.0))[0].id == "sharp-curvature"
    # plain SGD and its row-sparse form: 2/lr = 20
    for name in ("sgd", "sparse_sgd"):
        assert rule_curvature(_level(name, 19.0), _level(name, 19.0))[0].id == "curvature"
        (f,) = rule_curvature(_level(name, 21.0), _level(name, 19.0))
        assert f.id == "sharp-curvature" and f.evidence["sgd_stability_limit"] == pytest.approx(20.0)
