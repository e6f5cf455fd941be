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

pytest.importorskip("keras")
from keras_crash_cases import KERAS_CASES, KERAS_PARTLY_PROBED, N, X, ints, keras, keras_fit, mlp, rng  # noqa: E402


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
