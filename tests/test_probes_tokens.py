"""Probes on token models (embedding → pool → dense on the text generator): the cheap
preset runs under dense Adam and under lazy Adam, whose table gradient is (U, d) rows; the
gradient-norm probe then equals the dense gradient's norm from plain autograd (a dense
table gradient is zero off the rows the batch used)."""

import pytest
import torch

from scalelab import StackedGroup, StepView, expand
from scalelab._spec import parse_spec
from scalelab.probes import PRESETS, PROBES, ProbeSet

LAYERS = [{"kind": "embedding", "vocab": 60, "dim": 4}, {"kind": "pool", "steps": 8},
          {"kind": "dense", "units": 6}, {"kind": "activation", "fn": "tanh"}]


def _group(optim):
    spec = parse_spec({"name": "tok", "profile": "keras", "seeds": [0, 1],
                       "data": {"dataset": "text", "vocab": 60, "seq_len": 8, "n_samples": 256},
                       "optim": {"name": optim, "lr": 0.01}, "model": {"kind": "layers", "layers": LAYERS},
                       "train": {"dtype": "float64", "batch_size": 16, "epochs": 1}})
    return StackedGroup(expand(spec), None)


@pytest.mark.parametrize("optim", ["adam", "lazy_adam", "sparse_sgd"])
def test_cheap_probes_run_on_a_token_model_and_gradient_norms_equal_autograds_dense_norms(optim):
    g = _group(optim)
    ps = ProbeSet([PROBES[n]() for n in PRESETS["cheap"]], schedule="linear", every=1, batch=32)
    view = StepView(g)
    ps.on_group_start(view)
    rows = [view.records(m) for m in range(g.M)]
    perm = g.permutations()
    assert ("embedding0.W" in g.row_tables) == (optim != "adam")
    for s in range(3):
        idx = perm[:, s * 16:(s + 1) * 16]
        x, y = g.inputs(g.X_train, idx), g.targets(g.y_train, idx)
        # the oracle: the dense gradient of every parameter by plain autograd, before the step
        p = {k: v.detach().clone().requires_grad_() for k, v in g.params.items() if v.requires_grad
             or k == "embedding0.W"}
        loss, _ = g.objective({**g.params, **p}, x, y, training=True)
        dense = dict(zip(p, torch.autograd.grad(loss.sum(), list(p.values()))))
        view.batch = idx
        ps.on_step_start(view)
        view.loss = g.train_step(idx)[0]
        ps.on_step_end(view)
        if optim != "adam":   # the step's table gradient is (U, d) rows, not the (M, V, d) table
            assert g.grads["embedding0.W"].dim() == 2
        for m in range(g.M):
            got = {n: v for st, pr, n, v in rows[m] if st == s and pr == "gradients"}
            for k, gk in dense.items():
                assert got[f"{k}.norm"] == pytest.approx(float(gk[m].norm()), rel=1e-10), k
            total = sum(float(gk[m].pow(2).sum()) for gk in dense.values()) ** 0.5
            assert got["total.norm"] == pytest.approx(total, rel=1e-10)
    recorded = {pr for row in rows for _, pr, _, _ in row}
    # saturation reads plain MLPs' taps only; scales has nothing to record: token ids have no
    # scale and a classifier no output/target scales; every other cheap probe records
    assert recorded == set(PRESETS["cheap"]) - {"saturation", "scales"}
