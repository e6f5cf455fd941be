"""Token models: the embedding and pool layers, written once per model and stacked, equal
torch.nn.Embedding / torch.nn.LSTM per model (float64) in outputs and gradients; token ids
stay exact through the engine's data path."""

import numpy as np
import pytest
import torch

from scalelab import StackedGroup, expand
from scalelab._spec import parse_spec
from scalelab.models import Embedding, Lstm, Model, Pass, Pool


def _params(layers, M, rng):
    out = {}
    for layer in layers:
        for q in layer.params():
            out[q.name] = torch.as_tensor(rng.normal(scale=0.5, size=(M, *q.shape)), dtype=torch.float64)
    return out


def _ids(rng, M, B, T, V, pad_front=True):
    ids = rng.integers(1, V, size=(M, B, T))
    for m in range(M):
        for b in range(B):
            k = rng.integers(0, T // 2)              # some front padding
            ids[m, b, :k] = 0
    return torch.as_tensor(ids)


def test_stacked_embedding_equals_torch_nn_embedding_per_model_and_vmap_of_forward_one():
    M, B, T, V, d = 3, 4, 6, 11, 5
    rng = np.random.default_rng(0)
    layer = Embedding(0, T, V, d, padding=0)
    params = _params([layer], M, rng)
    params["embedding0.W"][:, 0] = 0.0                  # the padding row starts at zero (as torch's)
    params["embedding0.W"].requires_grad_()
    ids = _ids(rng, M, B, T, V)
    out = layer.forward(params, ids, Pass(M))
    assert out.shape == (M, B, T * d)
    torch.testing.assert_close(out, torch.func.vmap(layer.forward_one)({"embedding0.W": params["embedding0.W"]}, ids),
                               rtol=0, atol=0)
    w = torch.as_tensor(rng.normal(size=out.shape))
    (out * w).sum().backward()
    for m in range(M):
        emb = torch.nn.Embedding(V, d, padding_idx=0).double()
        with torch.no_grad():
            emb.weight.copy_(params["embedding0.W"][m])
        ref = emb(ids[m]).reshape(B, T * d)
        torch.testing.assert_close(out[m], ref, rtol=0, atol=0)
        (ref * w[m]).sum().backward()
        torch.testing.assert_close(params["embedding0.W"].grad[m], emb.weight.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("head", ["lstm2", "pool_mean", "pool_last"])
def test_embedding_then_stacked_lstm_or_pool_equals_torch_per_model_in_outputs_and_gradients(head):
    """Embedding → two stacked LSTM layers equals nn.Embedding → nn.LSTM(num_layers=2);
    embedding → pool equals the masked mean / last real token computed by hand."""
    M, B, T, V, d, H = 2, 5, 7, 13, 4, 6
    rng = np.random.default_rng(1)
    emb = Embedding(0, T, V, d)
    if head == "lstm2":
        layers = [emb, Lstm(0, T * d, H, T, return_sequences=True), Lstm(1, T * H, H, T)]
    else:
        layers = [emb, Pool(0, T * d, T, head.split("_")[1])]
    model = Model(layers)
    params = _params(layers, M, rng)
    params["embedding0.W"][:, 0] = 0.0
    for p in params.values():
        p.requires_grad_()
    ids = _ids(rng, M, B, T, V)
    out = model.forward(params, ids, Pass(M))
    w = torch.as_tensor(rng.normal(size=out.shape))
    (out * w).sum().backward()
    for m in range(M):
        e = torch.nn.Embedding(V, d, padding_idx=0).double()
        with torch.no_grad():
            e.weight.copy_(params["embedding0.W"][m])
        x = e(ids[m])                                    # (B, T, d)
        if head == "lstm2":
            net = torch.nn.LSTM(d, H, num_layers=2, batch_first=True).double()
            with torch.no_grad():
                for k in range(2):
                    getattr(net, f"weight_ih_l{k}").copy_(params[f"lstm{k}.W"][m].T)
                    getattr(net, f"weight_hh_l{k}").copy_(params[f"lstm{k}.U"][m].T)
                    getattr(net, f"bias_ih_l{k}").copy_(params[f"lstm{k}.b"][m].reshape(-1))
                    getattr(net, f"bias_hh_l{k}").zero_()
            _, (h, _) = net(x)
            ref = h[-1]
        else:
            real = (ids[m] != 0).double().unsqueeze(-1)
            if head == "pool_mean":
                ref = (x * real).sum(1) / real.sum(1)
            else:
                last = torch.tensor([int(np.flatnonzero(ids[m, b].numpy())[-1]) for b in range(B)])
                ref = x[torch.arange(B), last]
        torch.testing.assert_close(out[m], ref, rtol=1e-12, atol=1e-12)
        (ref * w[m]).sum().backward()
        torch.testing.assert_close(params["embedding0.W"].grad[m], e.weight.grad, rtol=1e-10, atol=1e-12)
        if head == "lstm2":
            torch.testing.assert_close(params["lstm1.U"].grad[m], net.weight_hh_l1.grad.T, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(params["lstm0.W"].grad[m], net.weight_ih_l0.grad.T, rtol=1e-10, atol=1e-12)


def _text_spec(optim="adam", layers=None, lr=0.01, **data):
    data = {"dataset": "text", "vocab": 60, "seq_len": 8, "n_samples": 256, **data}
    layers = layers or [{"kind": "embedding", "vocab": data["vocab"], "dim": 4}, {"kind": "lstm", "units": 5, "steps": 8}]
    return parse_spec({"name": "tok", "profile": "keras", "seeds": [0, 1], "data": data,
                       "optim": {"name": optim, "lr": lr}, "model": {"kind": "layers", "layers": layers},
                       "train": {"dtype": "float64", "batch_size": 16, "epochs": 1}})


def test_token_ids_stay_exact_int64_through_the_engine_and_a_frozen_table_never_moves():
    big = 2 ** 24 + 1                                   # not representable in float32
    layers = [{"kind": "embedding", "vocab": 60, "dim": 2, "trainable": False}, {"kind": "pool", "steps": 8}]
    g = StackedGroup(expand(_text_spec(layers=layers)), None)
    assert g.X_train.dtype == torch.int64
    X = g.X_train.clone()
    X[0, 3] = big
    x = g.inputs(X, torch.zeros(2, 1, dtype=torch.int64))
    assert x.dtype == torch.int64 and int(x[0, 0, 3]) == big
    assert "embedding0.W" not in g.opt.names and not g.params["embedding0.W"].requires_grad
    before = g.params["embedding0.W"].clone()
    g.train_step(g.permutations()[:, :16])
    assert torch.equal(g.params["embedding0.W"], before)


def test_the_text_generator_is_deterministic_and_plants_its_label_rule():
    from scalelab.data._text import MARK_A, MARK_B, make_text

    a, b = make_text(300, 50, seed=4, vocab=1000, steps=20, lengths="variable"), make_text(300, 50, seed=4,
                                                                                            vocab=1000, steps=20,
                                                                                            lengths="variable")
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_train, b.y_train)
    X, y = a.X_train, a.y_train
    pos_a = (X == MARK_A).argmax(1)
    pos_b = (X == MARK_B).argmax(1)
    assert ((X == MARK_A).sum(1) == 1).all() and ((X == MARK_B).sum(1) == 1).all()
    assert np.array_equal(y, (pos_a < pos_b).astype(int))
    lengths = (X != 0).sum(1)
    assert lengths.min() >= 10 and lengths.max() == 20 and (X[:, -1] != 0).all()   # front padding
    counts = np.bincount(X[X >= 3].ravel(), minlength=1000)
    assert counts[3] > counts[30] > counts[300]        # Zipf: frequent words first


def test_order_rule_is_learnable_an_lstm_beats_a_bag_of_words():
    """On the order rule a bag of words (counts → logistic regression, and the mean-pooled
    embedding model) stays at chance; the LSTM learns it."""
    from sklearn.linear_model import LogisticRegression

    from scalelab.data._text import make_text
    from scalelab.engine import train_group

    ds = make_text(1000, 400, seed=0, vocab=60, steps=8)
    counts = lambda X: np.stack([np.bincount(r, minlength=60) for r in X])  # noqa: E731
    bow = LogisticRegression(max_iter=2000).fit(counts(ds.X_train), ds.y_train).score(counts(ds.X_test), ds.y_test)
    lstm = [{"kind": "embedding", "vocab": 60, "dim": 8}, {"kind": "lstm", "units": 8, "steps": 8}]
    pooled = [{"kind": "embedding", "vocab": 60, "dim": 8}, {"kind": "pool", "steps": 8},
              {"kind": "dense", "units": 16}, {"kind": "activation"}]
    acc = {}
    for name, layers in (("lstm", lstm), ("pool", pooled)):
        spec = _text_spec(layers=layers, lr=0.02, n_samples=1000).model_copy(deep=True)
        res = train_group(expand(spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 4})})))
        acc[name] = min(r.epochs[-1]["test_acc"] for r in res)
    assert acc["lstm"] > 0.9, acc
    assert bow < 0.62 and max(r for k, r in acc.items() if k == "pool") < 0.62, (bow, acc)


@pytest.mark.parametrize("X, match", [
    (np.array([[1, 2, 60]]), r"token id 60 at row 0, position 2 is outside the vocabulary 0\.\.59; set data\.vocab"),
    (np.array([[1, -1, 3]]), r"token id -1 .* outside the vocabulary"),
    (np.array([[1, 0, 3]]), r"row 0 has the padding id 0 at position 1 between tokens"),
    (np.array([[0, 0, 0]]), r"row 0 holds only padding"),
    (np.array([[1.0, 2.0, 3.0]]), r"must be an integer array, got float64"),
])
def test_bad_token_ids_get_one_actionable_line(tmp_path, X, match):
    from scalelab.data import DataError

    path = tmp_path / "tok.npz"
    np.savez(path, X=np.repeat(X, 4, axis=0), y=np.array([0, 1, 0, 1]))
    spec = parse_spec({"name": "f", "seeds": [0], "data": {"dataset": "file", "path": str(path), "vocab": 60},
                       "model": {"kind": "layers", "layers": [{"kind": "embedding", "vocab": 60, "dim": 2},
                                                              {"kind": "pool", "steps": 3}]}})
    with pytest.raises(DataError, match=match) as e:
        StackedGroup(expand(spec), None)
    assert "\n" not in str(e.value)


def test_a_token_model_and_its_data_must_fit():
    with pytest.raises(ValueError, match="token ids stay exact"):
        StackedGroup(expand(_text_spec().model_copy(update={"input": parse_spec(
            {"name": "x", "input": {"transform": "standardize"}}).input})), None)
    spec = parse_spec({"name": "x", "seeds": [0], "data": {"dataset": "iris"},
                       "model": {"kind": "layers", "layers": [{"kind": "embedding", "vocab": 9, "dim": 2}]}})
    with pytest.raises(ValueError, match="an embedding layer needs token ids"):
        StackedGroup(expand(spec), None)


@pytest.mark.parametrize("mode", ["mean", "last"])
def test_pool_without_padding_equals_vmap_of_its_single_model_computation(mode):
    layer = Pool(0, 12, 4, mode)
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(3, 5, 12)))
    torch.testing.assert_close(layer.forward({}, x, Pass(3)), torch.func.vmap(lambda v: layer.forward_one({}, v))(x),
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("mode", ["mean", "last"])
def test_pool_with_padding_is_vmap_of_its_masked_single_model_computation(mode):
    """Padding anywhere (front, back, between tokens, a row of padding only): the stacked
    pool, ``vmap`` of ``forward_one`` with the mask, and ``forward_one`` on one model all
    equal the masked mean over real tokens / the last real token computed by hand in float64
    (the single-model computation used to ignore the mask)."""
    M, B, T, V, d = 3, 6, 7, 9, 4
    rng = np.random.default_rng(3)
    emb, pool = Embedding(0, T, V, d), Pool(0, T * d, T, mode)
    params = _params([emb], M, rng)
    params["embedding0.W"][:, 0] = 0.0
    ids = torch.as_tensor(rng.integers(0, V, size=(M, B, T)))          # ~1/9 of positions padding, anywhere
    ids[:, 0, :2] = 0
    ids[:, 1, -3:] = 0                                                  # back padding: the last real token is not the last step
    ids[:, 2, 3] = 0
    ids[1, 3] = 0                                                       # one row of padding only
    p = Pass(M)
    x = emb.forward(params, ids, p)
    out = pool.forward({}, x, p)
    torch.testing.assert_close(out, torch.func.vmap(lambda v, m: pool.forward_one({}, v, m))(x, p.mask), rtol=0, atol=0)
    for m in range(M):
        seq = x[m].reshape(B, T, d).numpy()
        ref = np.zeros((B, d))
        for b in range(B):
            real = [t for t in range(T) if ids[m, b, t] != 0]
            if real:
                ref[b] = seq[b, real].sum(0) / len(real) if mode == "mean" else seq[b, real[-1]]
        np.testing.assert_allclose(out[m].numpy(), ref, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(pool.forward_one({}, x[m], ids[m] != 0).numpy(), ref, rtol=1e-13, atol=1e-15)
    assert not torch.allclose(out, torch.func.vmap(lambda v: pool.forward_one({}, v))(x))   # the mask matters here
