"""The stacked engine against independent references: the same trials one by one, and a
plain nn.Module + torch.optim loop."""


import numpy as np
import pytest
import torch

from conftest import small_spec
from scalelab import StackedGroup, expand, train_group
from scalelab._spec import parse_spec


def per_step_losses(trials, steps, data_dir):
    g = StackedGroup(trials, str(data_dir))
    out = []
    perm = g.permutations()
    for s in range(steps):
        idx = perm[:, (s * g.batch_size) % g.n_train:][:, : g.batch_size]
        loss, _, _ = g.train_step(idx)
        out.append(loss.numpy().copy())
    return np.array(out), g


def four_trials(data_dir, profile="keras", optim="adam"):
    spec = parse_spec(small_spec(data_dir, profile=profile, seeds=[0, 1],
                                 optim={"name": optim, "lr": 3e-3, "weight_decay": 0.01 if optim == "adamw" else 0.0},
                                 train__dtype="float64",
                                 grid={"input.scale": ["1/255", "1/1000"], "optim.lr": [1e-3, 3e-3]}))
    trials = expand(spec)
    # four differently configured trials: distinct seeds, input scales and learning rates
    return [trials[0], trials[3], trials[5], trials[6]]


@pytest.mark.parametrize("profile,optim", [("keras", "adam"), ("torch", "momentum"), ("torch", "adamw")])
def test_stacked_equals_one_by_one_float64(fake_fmnist, profile, optim):
    trials = four_trials(fake_fmnist, profile, optim)
    assert len({(t.seed, t.spec["input"]["scale"], t.spec["optim"]["lr"]) for t in trials}) == 4
    stacked, _ = per_step_losses(trials, 40, fake_fmnist)
    for m, t in enumerate(trials):
        alone, _ = per_step_losses([t], 40, fake_fmnist)
        np.testing.assert_allclose(stacked[:, m], alone[:, 0], rtol=0, atol=1e-10)


def plain_torch_losses(trial, data_dir, steps):
    """The same model trained the ordinary way: nn.Sequential, F.cross_entropy, torch.optim."""
    g = StackedGroup([trial], str(data_dir))
    s = trial.spec
    layers = g.weighted
    net = torch.nn.Sequential(torch.nn.Linear(layers[0].fan_in, layers[0].fan_out), torch.nn.ReLU(),
                              torch.nn.Linear(layers[1].fan_in, layers[1].fan_out)).double()
    with torch.no_grad():
        for lin, layer in zip((net[0], net[2]), layers):
            lin.weight.copy_(g.params[layer.weight][0].T)
            lin.bias.copy_(g.params[layer.bias][0, 0])
    o = s["optim"]
    groups = [{"params": [net[0].weight, net[0].bias], "lr": o["lr"] * o["lr_mult"][0]},
              {"params": [net[2].weight, net[2].bias], "lr": o["lr"] * o["lr_mult"][1]}]
    if o["name"] == "momentum":
        opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"])
    elif o["name"] == "adamw":
        opt = torch.optim.AdamW(groups, lr=o["lr"], eps=o["eps"], weight_decay=o["weight_decay"])
    else:
        opt = torch.optim.Adam(groups, lr=o["lr"], eps=o["eps"])
    X = torch.as_tensor(g.split.X_train, dtype=torch.float64) * s["input"]["scale"]
    y = torch.as_tensor(g.split.y_train)
    perm = g.permutations()[0]
    out = []
    for st in range(steps):
        idx = perm[(st * 32) % g.n_train:][:32]
        loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return np.array(out)


@pytest.mark.parametrize("optim", ["adam", "momentum", "adamw"])
def test_engine_matches_plain_torch_loop(fake_fmnist, optim):
    spec = parse_spec(small_spec(fake_fmnist, profile="torch", seeds=[4], train__dtype="float64",
                                 optim={"name": optim, "lr": 2e-3, "lr_mult": [0.5, 2.0],
                                        "weight_decay": 0.05 if optim == "adamw" else 0.0}))
    trial = expand(spec)[0]
    ours, _ = per_step_losses([trial], 30, fake_fmnist)
    ref = plain_torch_losses(trial, fake_fmnist, 30)
    np.testing.assert_allclose(ours[:, 0], ref, rtol=1e-10, atol=1e-12)
    assert ref[-1] < ref[0]  # it trains


def test_same_seed_same_numbers_regardless_of_group(fake_fmnist):
    trials = four_trials(fake_fmnist)
    a = train_group(trials[:2], str(fake_fmnist))
    b = train_group([trials[1]], str(fake_fmnist))
    c = train_group([trials[1]], str(fake_fmnist))
    assert b[0].epochs == c[0].epochs  # same group: bit-identical
    # another group size may change BLAS blocking, hence the last bits only (float64)
    for ea, eb in zip(a[1].epochs, b[0].epochs):
        for k in ea:
            assert ea[k] == pytest.approx(eb[k], rel=1e-10, abs=1e-12)


def test_float32_training_learns_the_synthetic_task(fake_fmnist):
    spec = parse_spec(small_spec(fake_fmnist, seeds=1, train__epochs=3))
    res = train_group(expand(spec), str(fake_fmnist))[0]
    assert res.status == "done"
    assert res.epochs[-1]["train_loss"] < res.epochs[0]["train_loss"] and res.epochs[-1]["test_acc"] > 0.6


def test_per_feature_transform_inside_the_step(fake_fmnist):
    """standardize is applied per model inside the step: check the batch against numpy."""
    spec = parse_spec(small_spec(fake_fmnist, seeds=1, input={"transform": "standardize"}, train__dtype="float64"))
    g = StackedGroup(expand(spec), str(fake_fmnist))
    idx = torch.tensor([[0, 5, 7]])
    X = g.split.X_train.astype(np.float64)
    mean, std = X.mean(0), X.std(0)
    std[std == 0] = 1
    np.testing.assert_allclose(g.inputs(g.X_train, idx)[0].numpy(), (X[[0, 5, 7]] - mean) / std, rtol=1e-12,
                               atol=1e-12)


def test_diverging_trial_is_recorded_not_raised(fake_fmnist):
    spec = parse_spec(small_spec(fake_fmnist, profile="torch", seeds=1, input={"transform": "scale", "scale": 1e6},
                                 optim={"name": "sgd", "lr": 1.0}, grid={"optim.lr": [1e-3, 1e12]}))
    res = train_group(expand(spec), str(fake_fmnist))
    assert res[0].status == "done" and np.isfinite(res[0].epochs[-1]["train_loss"])
    assert res[1].status == "diverged" and res[1].diverged_step >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu_float64(fake_fmnist):
    trials = four_trials(fake_fmnist)
    cpu, _ = per_step_losses(trials, 12, fake_fmnist)
    spec = dict(trials[0].spec)
    moved = [t.model_copy(update={"spec": t.spec.model_copy(update={"train": t.spec.train.model_copy(
        update={"device": "cuda"})})}) for t in trials]
    g = StackedGroup(moved, str(fake_fmnist))
    perm = g.permutations()
    out = [g.train_step(perm[:, s * 32:(s + 1) * 32])[0].cpu().numpy() for s in range(12)]
    np.testing.assert_allclose(np.array(out), cpu, rtol=0, atol=1e-10)
    assert spec["train"]["device"] == "cpu"


@pytest.mark.parametrize("profile,loss,activation,l2", [
    ("keras", "crossentropy", "relu", 0.0), ("keras", "crossentropy", "tanh", 1e-3),
    ("torch", "crossentropy", "sigmoid", 0.0), ("keras-logits", "crossentropy", "linear", 1e-4)])
def test_hand_written_backward_equals_autograd(fake_fmnist, profile, loss, activation, l2):
    """The plain-MLP fast path (gradients by hand) against autograd, float64, including raw
    pixels where many samples sit on the clipped tails (zero gradient)."""
    spec = parse_spec(small_spec(fake_fmnist, profile=profile, seeds=[0, 1], train__dtype="float64",
                                 model={"hidden": [12, 7], "activation": activation},
                                 optim={"name": "adam", "l2": l2}, grid={"input.scale": ["1/255", 1]}))
    g = StackedGroup(expand(spec), str(fake_fmnist))
    assert g.manual_backward
    # kernels stored transposed in memory, (M, out, in), seen as (M, in, out): the hand-written
    # weight gradients must come out in the same layout (and the same values as autograd's)
    assert all(g.params[layer.weight].stride(1) == 1 for layer in g.weighted)
    for s in range(3):
        idx = g.permutations()[:, s * 32:(s + 1) * 32]
        x, y = g.inputs(g.X_train, idx), g.targets(g.y_train, idx)
        loss_h, out_h, grads_h = g.loss_and_grads(x, y)
        loss_a, out_a = g.objective(g.params, x, y)
        grads_a = torch.autograd.grad(loss_a.sum(), list(g.params.values()))
        torch.testing.assert_close(loss_h, loss_a.detach(), rtol=1e-13, atol=1e-14)
        for k, ga in zip(g.params, grads_a):
            torch.testing.assert_close(grads_h[k], ga, rtol=1e-10, atol=1e-14)
            assert grads_h[k].stride() == g.params[k].stride()
        g.train_step(idx)


def test_compiled_whole_step_equals_eager_step(fake_fmnist):
    """train.compile: the plain MLP's whole step (gather, hand-written backward, Adam) runs as
    one torch.compile graph; it gives the eager step's numbers (float64), gradients included."""
    spec = parse_spec(small_spec(fake_fmnist, seeds=[0, 1], train__dtype="float64", train__compile=True,
                                 optim={"name": "adam", "l2": 1e-3}, grid={"input.scale": ["1/255", 1]}))
    trials = expand(spec)
    fused_losses, g = per_step_losses(trials, 8, fake_fmnist)
    assert g._fused is not None and g.compiled  # it compiled and did not fall back
    eager = [t.model_copy(update={"spec": t.spec.model_copy(update={"train": t.spec.train.model_copy(
        update={"compile": False})})})
             for t in trials]
    eager_losses, e = per_step_losses(eager, 8, fake_fmnist)
    assert e._fused is None and not e.compiled
    np.testing.assert_allclose(fused_losses, eager_losses, rtol=1e-12, atol=1e-14)
    assert g.opt.t == e.opt.t == 8
    for k in g.params:
        torch.testing.assert_close(g.params[k], e.params[k], rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(g.grads[k], e.grads[k], rtol=1e-10, atol=1e-13)


def test_every_group_shape_gets_its_compiled_step(fake_fmnist):
    """Regression: past dynamo's graphs-per-function limit (default 8) a study's next group
    shape fell back to the eager step, 3.5x slower. Here the limit is 1 and a second shape
    must still compile."""
    spec = parse_spec(small_spec(fake_fmnist, seeds=[0, 1], train__dtype="float64", train__compile=True,
                                 optim={"name": "adam", "l2": 1e-3}, grid={"input.scale": ["1/255", 1]}))
    trials = expand(spec)
    with torch._dynamo.config.patch(recompile_limit=1):
        for group in (trials, trials[:3]):
            _, g = per_step_losses(group, 2, fake_fmnist)
            assert g._fused is not None and g.compiled and g.compile_error is None
            assert g.path()["step"] == "compiled" and g.path()["vec_isa"]


def test_hand_written_backward_regression_losses():
    for loss in ("mse", "mae"):
        spec = parse_spec({"name": "r", "profile": "torch", "seeds": [0, 1], "loss": {"name": loss},
                           "data": {"dataset": "diabetes"}, "input": {"transform": "standardize"},
                           "target": {"transform": "standardize"}, "model": {"hidden": [9]},
                           "train": {"dtype": "float64"}})
        g = StackedGroup(expand(spec), None)
        idx = g.permutations()[:, :32]
        x, y = g.inputs(g.X_train, idx), g.targets(g.y_train, idx)
        loss_h, _, grads_h = g.loss_and_grads(x, y)
        loss_a, _ = g.objective(g.params, x, y)
        for k, ga in zip(g.params, torch.autograd.grad(loss_a.sum(), list(g.params.values()))):
            torch.testing.assert_close(grads_h[k], ga, rtol=1e-10, atol=1e-14)


def test_inputs_gathered_into_reused_buffers_equal_fresh_ones():
    """Evaluation gathers each chunk's rows into buffers kept across chunks (issue 33: fresh
    blocks per chunk grew a 100 × 10,000 study to 5 GB); the values are the same bit for bit,
    for inputs standardized per feature (scale and offset) and scaled by one factor."""
    for data, inp in (({"dataset": "digits"}, {"transform": "standardize"}),
                      ({"dataset": "digits"}, {"transform": "scale", "scale": 1 / 16})):
        spec = parse_spec({"name": "b", "seeds": 3, "data": data, "input": inp, "model": {"hidden": [8]}})
        g = StackedGroup(expand(spec))
        buf = {}
        for i, n in ((0, 50), (50, 50), (100, 17)):      # a shorter last chunk reuses the front of the buffers
            idx = torch.arange(i, i + n).expand(g.M, -1)
            assert torch.equal(g.inputs(g.X_test, idx, buf), g.inputs(g.X_test, idx))
