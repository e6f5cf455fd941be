"""Row-sparse updates of embedding tables: lazy Adam equals dense Adam exactly on rows used
at every step and leaves unused rows alone; sparse SGD equals dense SGD; sparse_adam is
torch.optim.SparseAdam's mathematics; the engine's row-sparse step trains like the dense one."""

import numpy as np
import pytest
import torch

from scalelab import StackedGroup, expand
from scalelab._spec import parse_spec
from scalelab.optim import FusedOptimizer
from scalelab.optim._rows import lazy_adam_rows

M, V, D = 2, 10, 3
ALWAYS, SOMETIMES, NEVER = [1, 2], [3, 4, 5, 6], [0, 7, 8, 9]


def _hp(name, lr):
    per = lambda v: {name: torch.full((M, 1, 1), v, dtype=torch.float64)}  # noqa: E731
    hp = dict(lr=per(lr), b1=per(0.9), b2=per(0.999), eps=per(1e-7), wd=per(0.0), keras=per(1.0), mom=per(0.0))
    hp["lr"][name][1] = 2 * lr                         # a second model with its own lr
    return hp


def _run(optimizer, steps=6, lr=0.01):
    """The same table and gradients through a dense and a row-sparse optimizer."""
    rng = np.random.default_rng(0)
    p0 = torch.as_tensor(rng.normal(size=(M, V, D)))
    dense_p, sparse_p = p0.clone(), p0.clone()
    dense = FusedOptimizer(optimizer[0], {"T": dense_p}, _hp("T", lr))
    sparse = FusedOptimizer(optimizer[1], {"T": sparse_p}, _hp("T", lr))
    for _ in range(steps):
        used = ALWAYS + list(rng.choice(SOMETIMES, size=2, replace=False))
        g = torch.zeros(M, V, D, dtype=torch.float64)
        g[:, used] = torch.as_tensor(rng.normal(size=(M, len(used), D)))
        rows = torch.tensor(sorted(m * V + r for m in range(M) for r in used))
        dense.step({"T": dense_p}, {"T": g})
        sparse.step({"T": sparse_p}, {"T": g.view(M * V, D)[rows]}, {"T": rows})
    return p0, dense_p, sparse_p


def test_lazy_adam_equals_dense_adam_exactly_on_rows_used_at_every_step_and_leaves_unused_rows_unchanged():
    p0, dense, lazy = _run(("adam", "lazy_adam"))
    assert torch.equal(lazy[:, ALWAYS], dense[:, ALWAYS])           # bit for bit
    assert torch.equal(lazy[:, NEVER], p0[:, NEVER])
    assert not torch.equal(lazy[:, ALWAYS], p0[:, ALWAYS])
    # the mathematics differ on rows used now and then: dense Adam keeps moving them
    assert not torch.allclose(lazy[:, SOMETIMES], dense[:, SOMETIMES], rtol=1e-6, atol=0)


def test_sparse_sgd_equals_dense_sgd():
    p0, dense, sparse = _run(("sgd", "sparse_sgd"), lr=0.1)
    assert torch.equal(sparse, dense)
    assert not torch.equal(sparse, p0)


def test_sparse_adam_is_torch_sparse_adam_over_torch_sparse_gradients():
    """nn.Embedding(sparse=True) + torch.optim.SparseAdam against the lazy row kernel with
    Keras's eps placement, on the rows torch's coalesced sparse gradient names."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, D, sparse=True).double()
    W = emb.weight.detach().clone().unsqueeze(0)                     # (1, V, D)
    m, v = torch.zeros_like(W), torch.zeros_like(W)
    opt = torch.optim.SparseAdam(emb.parameters(), lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    rng = np.random.default_rng(1)
    for t in range(1, 8):
        ids = torch.as_tensor(rng.integers(0, V // 2 + t % 3, size=(4, 5)))
        target = torch.as_tensor(rng.normal(size=(4, 5, D)))
        opt.zero_grad()
        ((emb(ids) - target) ** 2).sum().backward()
        grad = emb.weight.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        opt.step()
        b1, b2 = 0.9, 0.999
        c, a = (1 - b2 ** t) ** 0.5 / (1 - b1 ** t), 1.0                 # Keras eps: lr·√bc2/bc1 · m/(√v + ε)
        lazy_adam_rows(W, rows, values, m, v, 0.05, b1, b2, 1e-8, 0.0, c, a)
        torch.testing.assert_close(W[0], emb.weight.detach(), rtol=1e-12, atol=1e-14)


def _group(optim, lr, steps):
    spec = parse_spec({"name": "rows", "profile": "keras", "seeds": [0, 1],
                       "data": {"dataset": "text", "vocab": 400, "seq_len": 6, "n_samples": 200},
                       "optim": {"name": optim, "lr": lr},
                       "model": {"kind": "layers", "layers": [{"kind": "embedding", "vocab": 400, "dim": 3},
                                                              {"kind": "lstm", "units": 4, "steps": 6}]},
                       "train": {"dtype": "float64", "batch_size": 8, "epochs": 1}})
    g = StackedGroup(expand(spec), None)
    perm = g.permutations()
    W0 = g.params["embedding0.W"].detach().clone()
    used, losses = torch.zeros(g.M, 400, dtype=torch.bool), []
    for s in range(steps):
        idx = perm[:, s * 8:(s + 1) * 8]
        ids = g.inputs(g.X_train, idx)
        for mm in range(g.M):
            used[mm, ids[mm].unique()] = True
        losses.append(g.train_step(idx)[0])
    return g, W0, used, torch.stack(losses)


def test_engine_row_sparse_steps_train_like_the_dense_steps():
    """One step from zero moments: lazy Adam = dense Adam everywhere (an unused row has
    m = 0, so dense Adam does not move it either); later the unused rows differ. Sparse SGD
    = dense SGD at every step (summation order of repeated ids aside)."""
    dense, W0, _, l_dense = _group("adam", 0.01, 1)
    lazy, _, _, l_lazy = _group("lazy_adam", 0.01, 1)
    torch.testing.assert_close(l_lazy, l_dense, rtol=1e-13, atol=0)
    for k in dense.params:
        torch.testing.assert_close(lazy.params[k], dense.params[k], rtol=1e-12, atol=1e-15)
    lazy, W0, used, _ = _group("lazy_adam", 0.01, 4)
    W = lazy.params["embedding0.W"].detach()
    assert torch.equal(W[~used], W0[~used]) and not torch.equal(W[used], W0[used])
    sgd, _, _, l_sgd = _group("sgd", 0.5, 6)
    sparse, _, _, l_sparse = _group("sparse_sgd", 0.5, 6)
    torch.testing.assert_close(l_sparse, l_sgd, rtol=1e-12, atol=0)
    for k in sgd.params:
        torch.testing.assert_close(sparse.params[k], sgd.params[k], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("name", ["lazy_adam", "sparse_adam", "sparse_sgd"])
def test_row_sparse_families_are_registered_and_cannot_stack_with_dense_ones(name):
    from scalelab.optim import family_of, group_family

    assert family_of(name).row_kernel is not None
    with pytest.raises(ValueError, match="cannot train in one stacked group"):
        group_family([name, "adam" if "adam" in name else "sgd"])
