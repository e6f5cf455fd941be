"""Optimizers, optax style: every named optimizer converges on a quadratic, a chain equals
its parts applied by hand, and the fused in-place step equals the pure chain."""

import numpy as np
import pytest
import torch

from scalelab import optim as _optim

NAMED = {
    "sgd": lambda: _optim.sgd(0.1),
    "momentum": lambda: _optim.momentum(0.05, 0.9),
    "nesterov": lambda: _optim.momentum(0.05, 0.9, nesterov=True),
    "adam": lambda: _optim.adam(0.05),
    "adam-keras": lambda: _optim.adam(0.05, eps=1e-7, keras_eps=1.0),
    "adamw": lambda: _optim.adamw(0.05, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_converges_on_a_quadratic(name):
    """f(w) = 0.5 (w - w*)ᵀ A (w - w*) with a stacked model axis of 3."""
    torch.manual_seed(0)
    A = torch.diag(torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64))
    target = torch.randn(3, 1, 3, dtype=torch.float64)
    params = {"w": torch.zeros(3, 1, 3, dtype=torch.float64)}
    opt = NAMED[name]()
    state = opt.init(params)
    for _ in range(1500):
        grad = {"w": (params["w"] - target) @ A}
        upd, state = opt.update(grad, state, params)
        params = _optim.apply_updates(params, upd)
    tol = 2e-2 if name == "adamw" else 1e-3  # weight decay pulls slightly toward 0
    torch.testing.assert_close(params["w"], target, atol=tol, rtol=0)


def test_adamw_chain_equals_its_parts_by_hand():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(2, 4, 3))
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-8
    opt = _optim.adamw(lr, b1, b2, eps, weight_decay=wd)
    params = {"w": torch.tensor(p)}
    state = opt.init(params)
    m = v = np.zeros_like(p)
    for t in range(1, 5):
        g = rng.normal(size=p.shape)
        upd, state = opt.update({"w": torch.tensor(g)}, state, params)
        params = _optim.apply_updates(params, upd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * ((m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + wd * p)
        np.testing.assert_allclose(params["w"].numpy(), p, rtol=1e-12, atol=1e-15)


def test_momentum_matches_torch_sgd():
    torch.manual_seed(1)
    w = torch.randn(1, 5, 2, dtype=torch.float64)
    ref = w.clone().requires_grad_()
    topt = torch.optim.SGD([ref], lr=0.1, momentum=0.8, nesterov=True)
    opt = _optim.momentum(0.1, 0.8, nesterov=True)
    params = {"w": w}
    state = opt.init(params)
    for _ in range(10):
        g = torch.randn_like(w)
        ref.grad = g.clone()
        topt.step()
        upd, state = opt.update({"w": g}, state, params)
        params = _optim.apply_updates(params, upd)
    torch.testing.assert_close(params["w"], ref.detach(), rtol=1e-13, atol=1e-15)


def _hp(M, names, lr, mom=0.0, wd=0.0, keras=1.0, eps=1e-7):
    rng = np.random.default_rng(3)
    lrs = lr * rng.uniform(0.5, 2.0, size=M)  # per-model learning rates

    def t(vals):
        return {n: torch.tensor(vals, dtype=torch.float64).view(-1, 1, 1) for n in names}

    return dict(lr=t(lrs), wd=t([wd] * M), b1=t([0.9] * M), b2=t([0.999] * M), eps=t([eps] * M),
                keras=t([keras] * M), mom=t([mom] * M)), lrs


@pytest.mark.parametrize("family,momentum,compile", [("adam", False, False), ("momentum", True, False),
                                                     ("sgd", False, False), ("adam", False, True)])
def test_fused_step_equals_the_chain(family, momentum, compile):
    M = 3
    rng = np.random.default_rng(0)
    shapes = {"W": (M, 5, 4), "b": (M, 1, 4)}
    p0 = {k: torch.tensor(rng.normal(size=s)) for k, s in shapes.items()}
    hp, lrs = _hp(M, list(shapes), 0.01, mom=0.9 if momentum else 0.0, wd=0.01)
    if family == "adam":
        chain = _optim.chain(_optim.scale_by_adam(hp["b1"], hp["b2"], hp["eps"], hp["keras"]),
                             _optim.add_decayed_weights(hp["wd"]), _optim.scale_by_lr(hp["lr"]))
    else:
        parts = [_optim.trace(hp["mom"])] if momentum else []
        chain = _optim.chain(*parts, _optim.add_decayed_weights(hp["wd"]), _optim.scale_by_lr(hp["lr"]))
    params = {k: v.clone() for k, v in p0.items()}
    fused_params = {k: v.clone() for k, v in p0.items()}
    fused = _optim.FusedOptimizer(family, fused_params, hp, compile=compile)
    state = chain.init(params)
    for _ in range(6):
        grads = {k: torch.tensor(rng.normal(size=s) * 1e-3) for k, s in shapes.items()}
        upd, state = chain.update(grads, state, params)
        params = _optim.apply_updates(params, upd)
        fused.step(fused_params, grads)
    for k in shapes:
        torch.testing.assert_close(fused_params[k], params[k], rtol=1e-12, atol=1e-14)
    if compile:
        assert fused.compiled


def test_flush_denormals_on_every_thread_and_restored():
    """Regression: torch.set_flush_denormal alone sets only the calling thread, while a large
    op runs on every thread of the OpenMP pool (measured: half the elements kept)."""
    from scalelab._runtime import denormals_flushed, flush_denormals

    torch.ones(300, 300) @ torch.ones(300, 300)  # the pool exists before the flag is set
    tiny = torch.full((1 << 20,), 1e-39)  # float32 denormals (below 1.18e-38)
    assert denormals_flushed() is False and bool((tiny != 0).all())
    with flush_denormals():
        assert denormals_flushed()
        assert bool(((tiny * 1.0) == 0).all())  # split across threads: every one flushes
    assert denormals_flushed() is False
    assert bool(((tiny * 1.0) == tiny).all())
    with flush_denormals(False):
        assert bool(((tiny * 1.0) == tiny).all())
