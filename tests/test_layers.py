"""Layers: each built-in layer's batched forward equals its single-model computation stacked
by vmap, and a new layer kind (written here, in the test, as its single-model computation
plus one registration line) trains stacked in the engine exactly like torch.nn per model."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scalelab import StackedGroup, expand
from scalelab._spec import parse_spec
from scalelab.models import (Activation, BatchNorm, Conv, Dense, FromImage, Layer, Param, Pass, ToImage,
                             register_layer)


def _params(layer, M, rng):
    return {q.name: torch.as_tensor(rng.normal(size=(M, *q.shape))) for q in layer.params()}


@pytest.mark.parametrize("layer,x_shape", [
    (Dense(0, 5, 4), (3, 7, 5)),
    (Activation(0, "tanh"), (3, 7, 5)),
    (Conv(1, 2, 3, 3), (3, 4, 2, 5, 5)),
    (BatchNorm(0, 5), (3, 7, 5)),
    (BatchNorm(2, 2), (3, 4, 2, 5, 5)),
    (ToImage((2, 3, 3)), (3, 4, 18)),
    (FromImage(), (3, 4, 2, 3, 3)),
])
def test_batched_forward_equals_vmap_of_the_single_model_computation(layer, x_shape):
    rng = np.random.default_rng(0)
    M = x_shape[0]
    params = _params(layer, M, rng)
    x = torch.as_tensor(rng.normal(size=x_shape))
    buffers = {n: torch.full((M * int(np.prod(s)),), v, dtype=torch.float64) for n, (s, v) in layer.buffers().items()}
    p = Pass(M, training=True, buffers=buffers)
    torch.testing.assert_close(layer.forward(params, x, p), Layer.forward(layer, params, x, p), rtol=1e-12, atol=1e-12)


# --- a new layer kind: its own class and one registration line, nothing else


@register_layer
@dataclass(frozen=True)
class LayerNorm(Layer):
    """Layer normalization over the features, with a learned scale and shift."""

    index: int
    features: int
    eps: float = 1e-5
    kind = "layernorm"

    def params(self):
        return [Param(f"ln{self.index}.gamma", (1, self.features)), Param(f"ln{self.index}.beta", (1, self.features))]

    def init(self, rng, scheme, scale, bias_init):
        return {f"ln{self.index}.gamma": np.ones((1, self.features)), f"ln{self.index}.beta": np.zeros((1, self.features))}

    def forward_one(self, params, x):
        return F.layer_norm(x, (self.features,), params[f"ln{self.index}.gamma"].reshape(-1),
                            params[f"ln{self.index}.beta"].reshape(-1), self.eps)


@pytest.mark.parametrize("optim", [{"name": "sgd", "lr": 0.1}, {"name": "adam", "lr": 0.01}])
def test_a_new_layer_trains_stacked_like_torch_nn_per_model(optim):
    spec = parse_spec({"name": "ln", "profile": "torch", "seeds": [0, 1, 2], "data": {"dataset": "iris"},
                       "input": {"transform": "standardize"}, "optim": optim,
                       "model": {"kind": "layers", "layers": [{"kind": "dense", "units": 6}, {"kind": "layernorm"},
                                                              {"kind": "activation", "fn": "tanh"}]},
                       "train": {"dtype": "float64", "batch_size": 16, "epochs": 1}})
    g = StackedGroup(expand(spec), None)
    assert [l.kind for l in g.layers] == ["dense", "layernorm", "activation", "dense"]
    assert not g.manual_backward   # autograd, through vmap of the single-model computation
    refs = []
    for m in range(g.M):
        net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.LayerNorm(6), torch.nn.Tanh(),
                                  torch.nn.Linear(6, 3)).double()
        with torch.no_grad():
            net[0].weight.copy_(g.params["dense0.W"][m].T)
            net[0].bias.copy_(g.params["dense0.b"][m, 0])
            net[3].weight.copy_(g.params["dense1.W"][m].T)
            net[3].bias.copy_(g.params["dense1.b"][m, 0])
        opt = (torch.optim.SGD(net.parameters(), lr=optim["lr"]) if optim["name"] == "sgd"
               else torch.optim.Adam(net.parameters(), lr=optim["lr"]))
        refs.append((net, opt))
    perm = g.permutations()
    for s in range(g.steps_per_epoch):
        idx = perm[:, s * 16:(s + 1) * 16]
        loss, _, _ = g.train_step(idx)
        x, y = g.inputs(g.X_train, idx), g.targets(g.y_train, idx)
        for m, (net, opt) in enumerate(refs):
            opt.zero_grad()
            ref = F.cross_entropy(net(x[m]), y[m])
            ref.backward()
            opt.step()
            assert float(loss[m]) == pytest.approx(float(ref.detach()), rel=1e-10, abs=1e-12)
    for m, (net, _) in enumerate(refs):
        torch.testing.assert_close(g.params["ln0.gamma"][m, 0], net[1].weight, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(g.params["dense1.W"][m].T, net[3].weight, rtol=1e-9, atol=1e-12)
