"""The crash matrix of issue 29: the Keras callback and ``scalelab.watch`` over the losses,
target encodings, input kinds and model styles real scripts use. Oracle: the same run
without scalelab. Nothing may escape ``fit`` or the loop, and the losses must be
bit-identical (``==``, not approximately) with probes off and with ``standard``."""

import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

os.environ.setdefault("KERAS_BACKEND", "torch")

import scalelab  # noqa: E402
import scalelab.keras  # noqa: E402

N = 96


def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------- Keras

keras = pytest.importorskip("keras")
L = keras.layers


def mlp(out, act, inp=(6,), hidden=8, **kw):
    return keras.Sequential([keras.Input(inp), L.Flatten(), L.Dense(hidden, activation="relu", **kw),
                             L.Dense(out, activation=act, **kw)])


def X(shape=(6,)):
    return rng().normal(size=(N, *shape)).astype("float32")


def ints(k):
    return rng().integers(0, k, size=N)


def k_cases():
    pd = pytest.importorskip("pandas")
    c = {}
    c["cce-onehot"] = lambda: (mlp(3, "softmax"), "categorical_crossentropy", X(), np.eye(3)[ints(3)], {})
    c["cce-logits"] = lambda: (mlp(3, None), keras.losses.CategoricalCrossentropy(from_logits=True), X(),
                               np.eye(3)[ints(3)], {})
    c["scce-1d"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", X(), ints(3), {})
    c["scce-logits-n1"] = lambda: (mlp(3, None), keras.losses.SparseCategoricalCrossentropy(from_logits=True), X(),
                                   ints(3)[:, None], {})
    c["bce-1d-float"] = lambda: (mlp(1, "sigmoid"), "binary_crossentropy", X(), ints(2).astype("float32"), {})
    c["bce-bool"] = lambda: (mlp(1, "sigmoid"), "binary_crossentropy", X(), ints(2).astype(bool), {})
    c["bce-logits-n1"] = lambda: (mlp(1, None), keras.losses.BinaryCrossentropy(from_logits=True), X(),
                                  ints(2)[:, None].astype("float32"), {})
    c["multilabel"] = lambda: (mlp(4, "sigmoid"), "binary_crossentropy", X(),
                               (rng().random((N, 4)) > .5).astype("float32"), {})
    c["mse"] = lambda: (mlp(1, None), "mse", X(), rng().normal(size=N), {})
    c["mae"] = lambda: (mlp(1, None), "mae", X(), rng().normal(size=(N, 1)), {})
    c["huber"] = lambda: (mlp(1, None), keras.losses.Huber(), X(), rng().normal(size=N), {})
    c["custom-fn"] = lambda: (mlp(1, None), lambda yt, yp: keras.ops.mean(keras.ops.abs(yt - yp) ** 3, axis=-1), X(),
                              rng().normal(size=(N, 1)), {})
    c["dataframe"] = lambda: (mlp(1, "sigmoid"), "binary_crossentropy", pd.DataFrame(X(), columns=list("abcdef")),
                              pd.Series(ints(2)), {})
    c["dataframe-probe-data"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", X(), ints(3),
                                         dict(probe_data=(pd.DataFrame(X()), pd.Series(ints(3)))))
    c["x-1d"] = lambda: (mlp(1, None, inp=(1,)), "mse", X(())[:, None][:, 0], rng().normal(size=N), {})
    c["images"] = lambda: (keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                                             L.Dense(3, activation="softmax")]),
                           "sparse_categorical_crossentropy", X((8, 8, 1)), ints(3), {})
    c["sequence-n-k-1"] = lambda: (keras.Sequential([keras.Input((5, 3)), L.LSTM(4, return_sequences=True),
                                                     L.Dense(1)]), "mse", X((5, 3)), rng().normal(size=(N, 5, 1)), {})
    c["zero-init"] = lambda: (mlp(3, "softmax", kernel_initializer="zeros"), "sparse_categorical_crossentropy", X(),
                              ints(3), {})
    c["validation-weights"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", X(), ints(3),
                                       dict(validation_data=(X()[:20], ints(3)[:20]), sample_weight=np.linspace(.5, 1, N)))

    def functional():
        i = keras.Input((6,))
        return keras.Model(i, L.Dense(2, activation="softmax")(L.Dense(8, activation="tanh")(i)))
    c["functional"] = lambda: (functional(), "sparse_categorical_crossentropy", X(), ints(2), {})

    def two_inputs():
        a, b = keras.Input((6,)), keras.Input((2,))
        return keras.Model([a, b], L.Dense(1)(L.Concatenate()([L.Dense(4, activation="relu")(a), b])))
    c["multi-input"] = lambda: (two_inputs(), "mse", [X(), X((2,))], rng().normal(size=N), {})

    def two_outputs():
        i = keras.Input((6,))
        h = L.Dense(8, activation="relu")(i)
        return keras.Model(i, [L.Dense(1, name="r")(h), L.Dense(2, activation="softmax", name="c")(h)])
    c["multi-output"] = lambda: (two_outputs(), ["mse", "sparse_categorical_crossentropy"], X(),
                                 [rng().normal(size=N), ints(2)], {})

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.h, self.o = L.Dense(8, activation="relu"), L.Dense(3)

        def call(self, x):
            return self.o(self.h(x))
    c["subclassed"] = lambda: (Sub(), keras.losses.SparseCategoricalCrossentropy(from_logits=True), X(), ints(3), {})

    class Seq(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return X()[i * 32:(i + 1) * 32], ints(3)[i * 32:(i + 1) * 32]
    c["pydataset"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", Seq(), None, {})

    def gen():
        while True:
            for i in range(3):
                yield X()[i * 32:(i + 1) * 32], ints(3)[i * 32:(i + 1) * 32]
    c["generator"] = lambda: (mlp(3, "softmax"), "sparse_categorical_crossentropy", gen(), None,
                              dict(steps_per_epoch=3))
    return c


KERAS_CASES = sorted(k_cases())
# what the probes cannot read yet (one "not probed" line each): several inputs or outputs, a 1-D input
KERAS_PARTLY_PROBED = {"multi-input", "multi-output", "x-1d"}


def keras_fit(case, callbacks):
    keras.utils.set_random_seed(0)
    model, loss, x, y, kw = k_cases()[case]()
    probe_data = kw.pop("probe_data", None)
    for cb in callbacks:
        cb.probe_data = probe_data
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    kw = {"batch_size": 32, **kw} if y is not None else kw
    h = model.fit(x, y, epochs=2, verbose=0, shuffle=False, callbacks=callbacks, **kw)
    return h.history["loss"]


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "torch") != "torch", reason="Keras on its torch backend")
@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_callback_never_breaks_fit(case, tmp_path, capsys):
    plain = keras_fit(case, [])
    for probes in ("none", "standard"):
        d = scalelab.keras.Diagnose(f"m{probes}", db=str(tmp_path / "m.db"), probes=probes)
        assert keras_fit(case, [d]) == plain, probes   # bit-identical
        out = capsys.readouterr().out
        assert out.startswith("scalelab: "), out       # a report, whatever happened inside
        assert "Traceback" not in out
        if probes == "standard" and case not in KERAS_PARTLY_PROBED:
            assert "not probed" not in out, out       # the usual shapes are probed, not just survived


# ---------------------------------------------------------------- PyTorch

def t_data(shape=(6,)):
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, *shape, generator=g)


class RNNWithHidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.fc = nn.RNN(3, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.fc(out[:, -1]), hidden


class OverridesTrain(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))

    def train(self, loader=None, epochs=1):   # the user's own training method, not nn.Module.train(mode)
        return self


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.h, self.r, self.c = nn.Linear(6, 8), nn.Linear(8, 1), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.h(x))
        return self.r(h), self.c(h)


def seq(*m):
    return nn.Sequential(*m)


def t_cases():
    yi = torch.as_tensor(ints(3))
    yf = t_data(())
    c = {}
    c["ce-module"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), nn.CrossEntropyLoss(), t_data(), yi,
                              lambda m, lf, x, y: lf(m(x), y))
    c["nll-function"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3), nn.LogSoftmax(1)), F.nll_loss,
                                 t_data(), yi, lambda m, lf, x, y: lf(m(x), y))
    c["mse-function-n1"] = lambda: (seq(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)), F.mse_loss, t_data(),
                                    yf[:, None], lambda m, lf, x, y: lf(m(x), y))
    c["user-function"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1)),
                                  lambda out, y: ((out.squeeze(1) - y) ** 2).mean(), t_data(), yf,
                                  lambda m, lf, x, y: lf(m(x), y))
    c["bce-logits"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1)), nn.BCEWithLogitsLoss(), t_data(),
                               (yi[:, None] > 0).float(), lambda m, lf, x, y: lf(m(x), y))
    c["bce-sigmoid"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid()), nn.BCELoss(), t_data(),
                                (yi[:, None] > 0).float(), lambda m, lf, x, y: lf(m(x), y))
    c["huber"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1)), nn.HuberLoss(), t_data(), yf[:, None],
                          lambda m, lf, x, y: lf(m(x), y))
    c["l1-functional-relu"] = lambda: (OverridesTrain(), nn.L1Loss(), t_data(), yf[:, None],
                                       lambda m, lf, x, y: lf(m(x), y))
    c["rnn-two-args"] = lambda: (RNNWithHidden(), nn.CrossEntropyLoss(), t_data((5, 3)), yi,
                                 lambda m, lf, x, y: lf(m(x, torch.zeros(1, len(x), 8))[0], y))
    c["multi-output"] = lambda: (TwoHeads(), nn.MSELoss(), t_data(), yf[:, None],
                                 lambda m, lf, x, y: lf(m(x)[0], y) + F.cross_entropy(m(x)[1], (y[:, 0] > 0).long()))

    def zero():
        m = seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        for p in m.parameters():
            nn.init.zeros_(p)
        return m
    c["zero-init"] = lambda: (zero(), nn.CrossEntropyLoss(), t_data(), yi, lambda m, lf, x, y: lf(m(x), y))
    c["images"] = lambda: (seq(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)),
                           nn.CrossEntropyLoss(), t_data((1, 8, 8)), yi, lambda m, lf, x, y: lf(m(x), y))
    c["mse-broadcast"] = lambda: (seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1)), nn.MSELoss(), t_data(), yf,
                                  lambda m, lf, x, y: lf(m(x), y))
    return c


TORCH_CASES = sorted(t_cases())
# two inputs, two outputs, a loss whose targets are invisible (a plain function), F.relu in forward
TORCH_PARTLY_PROBED = {"rnn-two-args", "multi-output", "user-function", "l1-functional-relu"}


def torch_loop(case, probes=None, tmp_path=None, loader=False):
    torch.manual_seed(0)
    model, loss_fn, x, y, step = t_cases()[case]()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = (torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32) if loader else
               [(x[i:i + 32], y[i:i + 32]) for i in range(0, N, 32)])
    losses = []
    w = (scalelab.watch(model, loss_fn, opt, study=f"t{probes}", db=str(tmp_path / "t.db"), probes=probes, epochs=2,
                        steps_per_epoch=3) if probes else None)
    model.train()
    for _ in range(2):
        for xb, yb in batches:
            opt.zero_grad()
            loss = step(model, loss_fn, xb, yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    if w is not None:
        w.close()
    return losses


@pytest.mark.parametrize("case", TORCH_CASES)
def test_watch_never_breaks_the_loop(case, tmp_path, capsys):
    plain = torch_loop(case)
    for probes in ("none", "standard"):
        assert torch_loop(case, probes, tmp_path, loader=probes == "standard") == plain, probes
        out = capsys.readouterr().out
        assert out.startswith("scalelab: ") and "Traceback" not in out, out
        if probes == "standard" and case not in TORCH_PARTLY_PROBED:
            assert "not probed" not in out, out


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "torch") != "torch", reason="Keras on its torch backend")
def test_a_fit_that_raised_leaves_no_wrapper_behind(tmp_path, capsys):
    """The user's own error propagates unchanged; the next fit (a new callback) starts from
    Keras's own train_step, and trains as it would without scalelab."""
    keras.utils.set_random_seed(0)
    model = mlp(3, "softmax")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="same shape"):   # integer labels for a one-hot loss: Keras's own error
        model.fit(X(), ints(3), epochs=1, verbose=0, callbacks=[scalelab.keras.Diagnose("r", db=str(tmp_path / "r.db"))])
    d = scalelab.keras.Diagnose("r2", db=str(tmp_path / "r.db"), verbose=False)
    model.fit(X(), np.eye(3)[ints(3)], epochs=1, verbose=0, callbacks=[d])
    assert "train_step" not in model.__dict__ and d.session is not None and d.session._step == 3
