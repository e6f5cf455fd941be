"""The keras profile against hand computations: the probability clip, Adam's eps, Glorot bounds."""

import math

import numpy as np
import pytest
import torch

from scalelab import _losses
from scalelab import optim as _optim
from scalelab._spec import ModelSpec
from scalelab.models import build_model, init_kernel


def test_clip_loss_and_its_zero_gradient():
    clip = torch.tensor([[1e-7]], dtype=torch.float64)
    # sample 0: true-class probability far below 1e-7; sample 1: far above 1 - 1e-7; sample 2: moderate
    logits = torch.tensor([[[0.0, 40.0, 0.0], [50.0, 0.0, 0.0], [1.0, 2.0, 0.5]]], dtype=torch.float64,
                          requires_grad=True)
    y = torch.tensor([[0, 0, 1]])
    loss = _losses.crossentropy_clipped_probs(logits, y, clip)
    assert loss[0, 0].item() == pytest.approx(-math.log(1e-7), rel=1e-12)  # 16.118...
    assert loss[0, 1].item() == pytest.approx(-math.log(1 - 1e-7), rel=1e-9)
    g, = torch.autograd.grad(loss.sum(), logits)
    assert torch.all(g[0, 0] == 0) and torch.all(g[0, 1] == 0)  # exactly zero: clipped
    p = np.exp([1.0, 2.0, 0.5]) / np.exp([1.0, 2.0, 0.5]).sum()
    np.testing.assert_allclose(g[0, 2].numpy(), p - np.array([0, 1, 0]), rtol=1e-12)  # softmax - onehot
    assert loss[0, 2].item() == pytest.approx(-math.log(p[1]), rel=1e-12)


def test_logits_crossentropy_matches_torch():
    logits = torch.randn(2, 5, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 5))
    ours = _losses.crossentropy_logits(logits, y)
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), y.reshape(-1), reduction="none").view(2, 5)
    torch.testing.assert_close(ours, ref, rtol=1e-14, atol=1e-14)


def keras_adam_reference(p, grads, lr, b1, b2, eps):
    """Keras 3's Adam.update_step written out in numpy float64."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        p = p - alpha * m / (np.sqrt(v) + eps)
        out.append(p.copy())
    return out


def test_keras_adam_eps_semantics():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(1, 3, 4))
    # tiny gradients: where eps dominates the denominator the two semantics differ most
    grads = [rng.normal(size=p0.shape) * 10.0 ** rng.integers(-9, 0, size=p0.shape) for _ in range(6)]
    ref = keras_adam_reference(p0, grads, 1e-3, 0.9, 0.999, 1e-7)
    opt = _optim.adam(1e-3, 0.9, 0.999, 1e-7, keras_eps=1.0)
    params = {"w": torch.tensor(p0)}
    state = opt.init(params)
    for g, r in zip(grads, ref):
        upd, state = opt.update({"w": torch.tensor(g)}, state, params)
        params = _optim.apply_updates(params, upd)
        np.testing.assert_allclose(params["w"].numpy(), r, rtol=1e-12, atol=1e-15)
    # and the torch semantics really are different on these gradients
    opt_t = _optim.adam(1e-3, 0.9, 0.999, 1e-7, keras_eps=0.0)
    pt = {"w": torch.tensor(p0)}
    st = opt_t.init(pt)
    for g in grads:
        u, st = opt_t.update({"w": torch.tensor(g)}, st, pt)
        pt = _optim.apply_updates(pt, u)
    assert np.abs(pt["w"].numpy() - ref[-1]).max() > 1e-6


def test_glorot_uniform_bounds_and_variance():
    rng = np.random.default_rng(0)
    w = init_kernel("glorot_uniform", 784, 128, rng)
    limit = math.sqrt(6 / (784 + 128))
    assert w.min() >= -limit and w.max() <= limit and w.max() > 0.99 * limit
    assert w.var() == pytest.approx(limit ** 2 / 3, rel=0.02)


@pytest.mark.parametrize("scheme,var", [("glorot_normal", 2 / (300 + 100)), ("he_normal", 2 / 300),
                                        ("normal_glorot", 2 / (300 + 100)), ("torch_default", 1 / (3 * 300))])
def test_init_variances(scheme, var):
    w = init_kernel(scheme, 300, 100, np.random.default_rng(1))
    assert w.var() == pytest.approx(var, rel=0.03)


def test_keras_profile_biases_are_zero_and_init_scale_multiplies():
    model = build_model(ModelSpec(hidden=[128]), 784, 10)
    a = model.init(3, "glorot_uniform", 1.0, "zeros")
    b = model.init(3, "glorot_uniform", [1 / 255, 1.0], "zeros")
    assert not a["dense0.b"].any()
    np.testing.assert_allclose(b["dense0.W"], a["dense0.W"] / 255, rtol=1e-15)
    np.testing.assert_array_equal(b["dense1.W"], a["dense1.W"])
