"""The LSTM layer: written once per model, stacked by vmap; per model it equals torch.nn.LSTM
(float64) in outputs and gradients, and it trains in the engine like torch.nn per model."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scalelab import StackedGroup, expand
from scalelab._spec import parse_spec
from scalelab.models import Lstm, Pass, init_orthogonal


def _torch_lstm(W, U, b):
    """torch.nn.LSTM with our per-model parameters (same gate order, kernels transposed)."""
    F_, H4 = W.shape
    net = torch.nn.LSTM(F_, H4 // 4, batch_first=True).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(W.T)
        net.weight_hh_l0.copy_(U.T)
        net.bias_ih_l0.copy_(b.reshape(-1))
        net.bias_hh_l0.zero_()
    return net


@pytest.mark.parametrize("return_sequences", [False, True])
def test_stacked_lstm_equals_torch_nn_lstm_per_model_in_outputs_and_gradients(return_sequences):
    M, B, T, Fe, H = 3, 5, 4, 3, 6
    layer = Lstm(0, T * Fe, H, T, return_sequences)
    rng = np.random.default_rng(0)
    params = {q.name: torch.as_tensor(rng.normal(scale=0.5, size=(M, *q.shape)), dtype=torch.float64).requires_grad_()
              for q in layer.params()}
    x = torch.as_tensor(rng.normal(size=(M, B, T * Fe)))
    out = layer.forward(params, x, Pass(M))
    assert out.shape == (M, B, layer.n_out(T * Fe))
    w = torch.as_tensor(rng.normal(size=out.shape))
    (out * w).sum().backward()
    for m in range(M):
        net = _torch_lstm(params["lstm0.W"][m].detach(), params["lstm0.U"][m].detach(), params["lstm0.b"][m].detach())
        seq, (h, _) = net(x[m].reshape(B, T, Fe))
        ref = seq.reshape(B, T * H) if return_sequences else h[0]
        torch.testing.assert_close(out[m], ref, rtol=1e-12, atol=1e-12)
        (ref * w[m]).sum().backward()
        torch.testing.assert_close(params["lstm0.W"].grad[m], net.weight_ih_l0.grad.T, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(params["lstm0.U"].grad[m], net.weight_hh_l0.grad.T, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(params["lstm0.b"].grad[m, 0], net.bias_ih_l0.grad, rtol=1e-10, atol=1e-12)


def test_keras_initialisers_orthogonal_recurrent_kernel_and_unit_forget_bias():
    layer = Lstm(0, 8, 5, 2)
    p = layer.init(np.random.default_rng(1), "glorot_uniform", 1.0, "zeros")
    U = p["lstm0.U"]                                   # (5, 20): orthonormal rows
    np.testing.assert_allclose(U @ U.T, np.eye(5), atol=1e-12)
    b = p["lstm0.b"][0]
    assert (b[5:10] == 1).all() and (b[:5] == 0).all() and (b[10:] == 0).all()
    limit = np.sqrt(6 / (4 + 20))                      # Glorot over (features, 4·units)
    assert np.abs(p["lstm0.W"]).max() <= limit and p["lstm0.W"].shape == (4, 20)
    c = layer.init(np.random.default_rng(1), "glorot_uniform", 1.0, -3.0)["lstm0.b"][0]
    assert (c[5:10] == 1).all() and (c[:5] == -3).all() and (c[10:] == -3).all()   # as Keras: constant, forget 1
    tall = init_orthogonal(np.random.default_rng(2), (7, 3))
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)


def test_steps_must_divide_the_input_width():
    with pytest.raises(ValueError, match="steps"):
        Lstm(0, 10, 4, 3)


def test_lstm_trains_stacked_in_the_engine_like_torch_per_model():
    spec = parse_spec({"name": "lstm", "profile": "torch", "seeds": [0, 1], "data": {"dataset": "iris"},
                       "input": {"transform": "standardize"}, "optim": {"name": "adam", "lr": 0.01},
                       "model": {"kind": "layers", "layers": [{"kind": "lstm", "units": 5, "steps": 2}]},
                       "train": {"dtype": "float64", "batch_size": 16, "epochs": 1}})
    g = StackedGroup(expand(spec), None)
    assert [l.kind for l in g.layers] == ["lstm", "dense"] and not g.manual_backward
    refs = []
    for m in range(g.M):
        lstm = _torch_lstm(g.params["lstm0.W"][m], g.params["lstm0.U"][m], g.params["lstm0.b"][m])
        lstm.bias_hh_l0.requires_grad_(False)          # one bias, as in the layer
        head = torch.nn.Linear(5, 3).double()
        with torch.no_grad():
            head.weight.copy_(g.params["dense1.W"][m].T)
            head.bias.copy_(g.params["dense1.b"][m, 0])
        opt = torch.optim.Adam([*(p for p in lstm.parameters() if p.requires_grad), *head.parameters()], lr=0.01)
        refs.append((lstm, head, opt))
    perm = g.permutations()
    for s in range(g.steps_per_epoch):
        idx = perm[:, s * 16:(s + 1) * 16]
        loss, _, _ = g.train_step(idx)
        x, y = g.inputs(g.X_train, idx), g.targets(g.y_train, idx)
        for m, (lstm, head, opt) in enumerate(refs):
            opt.zero_grad()
            _, (h, _) = lstm(x[m].reshape(x.shape[1], 2, 2))
            ref = F.cross_entropy(head(h[0]), y[m])
            ref.backward()
            opt.step()
            assert float(loss[m]) == pytest.approx(float(ref.detach()), rel=1e-9, abs=1e-12)
    for m, (lstm, _, _) in enumerate(refs):
        torch.testing.assert_close(g.params["lstm0.U"][m].T, lstm.weight_hh_l0, rtol=1e-8, atol=1e-11)
