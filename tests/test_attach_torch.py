"""scalelab.watch on a plain PyTorch loop: the probes it records through hooks equal the
built-in engine's for the same model, batches and optimizer (float64); its hooks go away
on exit and never change training; a layer it cannot probe is listed, not crashed on."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import scalelab
from scalelab import Hook, Store, expand, train_group
from scalelab._spec import parse_spec
from scalelab.probes import make_probe_set

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"name": "twin", "seeds": [3], "profile": "torch", "data": {"dataset": "iris", "validation": 0},
        "input": {"transform": "standardize"}, "model": {"hidden": [6]}, "optim": {"name": "adam", "lr": 0.05},
        "train": {"dtype": "float64", "batch_size": 16, "epochs": 2, "compile": False, "shuffle": False},
        "probes": {"preset": "full", "batch": 24, "hessian_iters": 30}}


class Capture(Hook):
    """The engine's training rows (transformed) and initial parameters and hyperparameters."""

    def on_group_start(self, view):
        rows = torch.arange(view.n_train)
        self.x, self.y = (t[0].clone() for t in view.training_rows(rows))
        self.params = {k: v[0].clone() for k, v in view.params.items()}
        self.hp = {n: float(next(iter(view.hyperparameter(n).values()))[0]) for n in ("lr", "b1", "b2", "eps")}
        self.spe, self.total = view.steps_per_epoch, view.total_steps


def twin_model(params):
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    with torch.no_grad():
        for i, lin in ((0, model[0]), (1, model[2])):
            lin.weight.copy_(params[f"dense{i}.W"].t())
            lin.bias.copy_(params[f"dense{i}.b"].reshape(-1))
    return model


def test_watched_probes_equal_the_engines(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALELAB_AUTOGRAD", "1")   # kernels in the (fan_in, fan_out) layout the twin copies
    trials = expand(parse_spec(SPEC))
    cap = Capture()
    engine = train_group(trials, probes=make_probe_set(trials), hooks=[cap])[0]

    model, loss_fn = twin_model(cap.params), nn.CrossEntropyLoss()
    hp = cap.hp
    opt = torch.optim.Adam(model.parameters(), lr=hp["lr"], betas=(hp["b1"], hp["b2"]), eps=hp["eps"])
    epochs = SPEC["train"]["epochs"]
    with scalelab.watch(model, loss_fn, opt, study="twin", db=str(tmp_path / "w.db"), probes="full",
                        epochs=epochs, steps_per_epoch=cap.spe, probe_data=(cap.x, cap.y), verbose=False) as w:
        w.session.cfg = w.session.cfg.model_copy(update={"batch": 24, "hessian_iters": 30})
        for _ in range(epochs):
            for i in range(0, len(cap.y), 16):
                opt.zero_grad()
                loss_fn(model(cap.x[i:i + 16]), cap.y[i:i + 16]).backward()
                opt.step()

    ours = {(s, p, n): v for s, p, n, v in w.session.view.records(0)}
    # the error signal reads the engine's own graph at its pre-activations: a watched model's taps
    # are reshaped copies off the path to its loss, so that probe is the engine's alone
    theirs = {(s, p, n): v for s, p, n, v in engine.probes if p != "error_signal"}
    assert set(ours) == set(theirs)
    probes = {p for _, p, _ in theirs}
    assert probes >= {"loss", "gradients", "logits", "zero_grad", "activations", "update", "preact_step",
                      "adam_eps", "hessian"}
    for k, v in theirs.items():
        rtol = 1e-6 if k[1] == "hessian" else 1e-9
        assert ours[k] == pytest.approx(v, rel=rtol, abs=1e-12), k
    # the stored epochs: the sample-weighted mean of the batch losses, as the engine's train loss is not
    stored = Store(tmp_path / "w.db")
    trial = stored.trials(stored.require_study("twin")["id"])[0]
    assert len(stored.epochs(trial["id"])) == epochs and trial["level"] == {}


def run_loop(model, loss_fn, opt, X, y, steps=12, watcher=None):
    losses = []
    for i in range(steps):
        xb, yb = X[i * 20:(i + 1) * 20], y[i * 20:(i + 1) * 20]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def small_problem(seed=0):
    torch.manual_seed(seed)
    X = torch.randn(240, 10)
    y = (X[:, :3].sum(1) > 0).long() + (X[:, 3] > 1).long()
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    return X, y, model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("probes", ["none", "standard"])
def test_hooks_leave_training_bit_identical_and_are_removed(probes, tmp_path):
    X, y, model, loss_fn, opt = small_problem()
    torch.manual_seed(1)
    plain = run_loop(model, loss_fn, opt, X, y)

    X, y, model, loss_fn, opt = small_problem()
    torch.manual_seed(1)   # dropout draws from the global stream: probes must not draw from it
    with scalelab.watch(model, loss_fn, opt, study="same", db=str(tmp_path / "s.db"), probes=probes, verbose=False,
                        total_steps=12) as w:
        watched = run_loop(model, loss_fn, opt, X, y)
    assert watched == plain   # bit-identical, not approximately equal
    assert not model._forward_pre_hooks and not model._forward_hooks and not loss_fn._forward_hooks
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    assert all(not m._forward_hooks for m in model.modules())
    assert w.session.epochs[0]["train_loss"] == pytest.approx(sum(plain) / len(plain), rel=1e-12)


class FunctionalRelu(nn.Module):
    """Its hidden activation is F.relu inside forward: no module for the watcher to tap."""

    def __init__(self):
        super().__init__()
        self.a, self.norm, self.b = nn.Linear(10, 8), nn.LayerNorm(8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(self.norm(torch.relu(self.a(x))))


def test_a_layer_it_cannot_probe_is_listed(tmp_path, capsys):
    X, y, _, loss_fn, _ = small_problem()
    model = FunctionalRelu()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    with scalelab.watch(model, loss_fn, opt, study="odd", db=str(tmp_path / "o.db"), probes="standard",
                        total_steps=12):
        run_loop(model, loss_fn, opt, X, y)
    out = capsys.readouterr().out
    assert "not probed: a (its activation is not a module" in out
    store = Store(tmp_path / "o.db")
    trial = store.trials(store.require_study("odd")["id"])[0]
    assert trial["env"]["skipped_layers"] and trial["env"]["watched"] == "pytorch"
    names = {n for _, p, n, _ in store.probes(trial["id"])}
    # the LayerNorm's parameters still get gradient and update sizes; the head's pre-activations are tapped
    assert {"norm.weight.norm", "pre1.mean"} <= names and "act0.dead_frac" not in names


def test_bad_input_is_one_actionable_line(tmp_path):
    _, _, model, _, opt = small_problem()
    # a loss given as a function is watched (issue 29: F.nll_loss is PyTorch's own examples' style); not a loss at all is not
    with pytest.raises(TypeError, match="loss_fn must be the loss the loop calls"):
        scalelab.watch(model, "cross_entropy", opt, study="x", db=str(tmp_path / "x.db"))
    with pytest.raises(ValueError, match="expected one of"):
        scalelab.watch(model, nn.CrossEntropyLoss(), opt, study="x", probes="most", db=str(tmp_path / "x.db"))


def test_pytorch_example_quick(tmp_path):
    db = tmp_path / "ex.db"
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "pytorch_loop.py"), "--quick", "--db", str(db)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "[no-pathology] at input.scale=1/255" in run.stdout
    cli = subprocess.run([sys.executable, "-m", "scalelab", "explain", "--db", str(db), "pytorch-loop"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    # the conv layers' activations were tapped (channels as units): dead units per conv layer
    assert "(layer 0)" in cli.stdout and "(layer 1)" in cli.stdout
    store = Store(db)
    trial = store.trials(store.require_study("pytorch-loop")["id"])[0]
    epochs = store.epochs(trial["id"])
    assert len(epochs) == 1 and math.isfinite(epochs[0]["train_loss"])
