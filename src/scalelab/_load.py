"""A kept trained model back from the store: ``scalelab.load(study, trial, db=...)``.

A trial run with ``train.keep = "final"`` or ``"best"`` stores its parameters, buffers and
fitted transforms (engine/_keep.py). :func:`load` rebuilds the trial's stacked group (the
same computation it trained in, never a second path; data loaded from its spec as in
training) with as many copies of the model as it trained beside (a CPU batched matmul may
round differently with another number of models), puts the kept arrays into each and
answers with the first:

* :meth:`LoadedModel.predict` on raw inputs, in the user's units: class probabilities,
  regression outputs through the inverse target transform, a trajectory model's best
  single future path (n, T, 2) in the data's coordinates;
* :meth:`LoadedModel.sample` K futures per input (trajectory models that have a
  distribution), each row drawn from its own stream as the stored test metrics were;
* :meth:`LoadedModel.evaluate` the validation and test metrics as training computed them;
* :meth:`LoadedModel.state_dict` / :meth:`to_torch` a plain PyTorch export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


class LoadError(ValueError):
    """No kept model for what was asked; the message says what to do."""


class LoadedModel:
    """One kept model (see the module docstring). ``trial`` is the store's row of the trial,
    ``which`` "final" or "best", ``epoch`` the epoch its parameters are from."""

    def __init__(self, group, trial: dict, which: str, epoch: int):
        self.g, self.trial, self.which, self.epoch = group, trial, which, epoch
        self.spec = group.spec
        self.head = group.custom_loss
        self._evaluated = None

    # -- inputs as training saw them
    def _features(self, X) -> torch.Tensor:
        from .engine._state import to_device

        X = np.asarray(X)
        D = self.g.X_train.shape[1]
        if X.ndim == 1 and X.size == D:
            X = X[None]
        X = X.reshape(len(X), -1)
        if X.shape[1] != D:
            raise ValueError(f"inputs have {X.shape[1]} values per row; this model takes {D} (as its training data)")
        dummy = np.zeros((len(X),) if self.g.classification else (len(X), 1), np.int64 if self.g.classification
                         else np.float64)
        return to_device(X, dummy, self.g.classification, self.g.dtype, self.g.device)[0]

    def _chunks(self, n: int, D: int):
        # the rows per forward pass evaluation uses, so predictions equal the evaluated ones bit for bit
        from .trajectories._evaluate import CHUNK

        step = CHUNK if self.head is not None else max(1, min(n, (1 << 18) // max(1, D)))
        for i in range(0, n, step):
            yield torch.arange(i, min(n, i + step), device=self.g.device)

    @torch.no_grad()
    def predict(self, X) -> np.ndarray:
        """Outputs for raw inputs ``X`` (rows as in the training file, any shape that flattens
        to them): class probabilities (n, classes); regression outputs (n, targets) in the
        targets' units; trajectories: the best single future (n, T, 2) in coordinates."""
        g = self.g
        Xt = self._features(X)
        parts = []
        for idx in self._chunks(len(Xt), Xt.shape[1]):
            xb = g.inputs(Xt, idx.expand(g.M, -1))
            if self.head is not None:
                out = g.forward(g.params, xb)
                parts.append(self.head.decode(xb, out, 1, idx.cpu().numpy())["point"][0])
                continue
            out = g.forward(g.params, xb)
            if g.classification:
                parts.append(torch.softmax(out.double(), -1)[0].cpu().numpy())
            else:
                parts.append(g.to_original(out)[0].double().cpu().numpy())
        return np.concatenate(parts)

    @torch.no_grad()
    def sample(self, X, k: int = 20, stream: int = 0) -> np.ndarray:
        """``k`` sampled futures per input, (n, k, T, 2) in coordinates. Row r draws from its
        own stream (the trial's seed, r): ``stream = 0`` gives the draws the stored test metrics
        used for the test set's rows; another ``stream`` gives fresh, independent draws."""
        if self.head is None or self.head.name == "trajectory_mse":
            raise ValueError(f"loss {self.spec.loss.name!r} has one answer per input and nothing to sample; "
                             f"use predict (sampling needs cvae_elbo, mdn_nll or grid_softmax)")
        g = self.g
        Xt = self._features(X)
        parts = []
        for idx in self._chunks(len(Xt), Xt.shape[1]):
            xb = g.inputs(Xt, idx.expand(g.M, -1))
            rows = idx.cpu().numpy() + (int(stream) << 32)
            parts.append(self.head.decode(xb, g.forward(g.params, xb), k, rows)["samples"][0])
        return np.concatenate(parts)

    def evaluate(self) -> dict[str, dict[str, float]]:
        """{"val": …, "test": …}: the metrics the training loop computed after the kept epoch,
        recomputed on the trial's own split (validation first, as training does)."""
        if self._evaluated is None:
            g = self.g
            out = {}
            for part, X, y in (("val", g.X_val, g.y_val), ("test", g.X_test, g.y_test)):
                out[part] = {k: float(v[0]) for k, v in g.evaluate(X, y).items() if not k.startswith("show.")}
            self._evaluated = out
        return self._evaluated

    def test_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The trial's raw test inputs and targets (its split, rebuilt from the spec)."""
        return self.g.split.X_test, self.g.split.y_test

    # -- export
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters as plain tensors without the model axis. A dense network (dense and
        activation layers) is named as ``torch.nn.Sequential`` of ``Linear`` and activation
        modules names it (``"0.weight"`` (out, in), ``"0.bias"``, …: :meth:`to_torch` loads
        it); other models keep scalelab's parameter names. The input transform is not in it:
        feed the module :meth:`transform` (X)."""
        g = self.g
        own = {k: v[0].detach().clone().contiguous() for k, v in g.params.items()}
        if not self._sequential():
            return own | {f"buffer.{k}": v[0].detach().clone() for k, v in g.buffers.items()}
        out = {}
        for i, layer in enumerate(g.model.layers):
            if layer.kind == "dense":
                out[f"{i}.weight"] = own[layer.weight].T.contiguous()
                out[f"{i}.bias"] = own[layer.bias].reshape(-1).contiguous()
        return out

    def _sequential(self) -> bool:
        return self.head is None and all(layer.kind in ("dense", "activation") for layer in self.g.model.layers)

    def to_torch(self) -> torch.nn.Sequential:
        """The dense network as a ``torch.nn.Sequential`` (outputs: logits or transformed
        regression outputs; see :meth:`state_dict`)."""
        if not self._sequential():
            raise ValueError("to_torch exports dense networks (dense and activation layers); use state_dict() for "
                             f"this model's {', '.join(sorted({l.kind for l in self.g.model.layers}))} layers")
        acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "linear": torch.nn.Identity}
        mods = [torch.nn.Linear(layer.fan_in, layer.fan_out, dtype=self.g.dtype) if layer.kind == "dense"
                else acts[layer.fn]() for layer in self.g.model.layers]
        net = torch.nn.Sequential(*mods)
        net.load_state_dict(self.state_dict())
        return net.eval()

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Raw inputs through the fitted input transform: what the exported network takes."""
        Xt = self._features(X)
        idx = torch.arange(len(Xt), device=self.g.device).expand(self.g.M, -1)
        return self.g.inputs(Xt, idx)[0].cpu().numpy()


def load(study: str, trial: "int | str", db: "str | Path" = "scalelab.db", data_dir: str | None = None) -> LoadedModel:
    """The kept model of ``trial`` (its id, as ``scalelab show --format json`` lists it, or its
    key) in the newest study ``study`` of store ``db``."""
    from ._spec import Trial, TrialSpec
    from ._store import Store
    from .engine import StackedGroup
    from .engine._keep import put

    with Store(db, readonly=True) as store:
        info = store.require_study(study)
        rows = store.trials(info["id"])
        row = next((t for t in rows if str(t["id"]) == str(trial) or t["key"] == str(trial)), None)
        if row is None:
            ids = ", ".join(str(t["id"]) for t in rows[:12]) + (" …" if len(rows) > 12 else "")
            raise LoadError(f"study {study!r} has no trial {trial!r}; its trials: {ids or 'none'}")
        kept = store.kept(row["id"])
    if kept is None:
        raise LoadError(f"trial {row['id']} of {study!r} kept no parameters; run the study with train.keep = 'final' "
                        f"or 'best' (scalelab study run {study} --keep final)")
    spec = TrialSpec.model_validate_json(json.dumps(row["spec"]))
    # evaluation never reads the compiled training step: build the group without compiling
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"compile": False})})
    t = Trial(study=study, level=row["level"], seed=row["seed"], spec=spec)
    # as many copies as models trained beside it: the same batched arithmetic (engine/_keep.py)
    g = StackedGroup([t] * kept["group_size"], data_dir)
    for m in range(g.M):
        put(g, m, kept["arrays"])
    g.step = g.total_steps          # a trained model: the evaluation computes the final metrics
    return LoadedModel(g, row, kept["which"], kept["epoch"])
