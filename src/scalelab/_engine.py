"""The stacked engine: a group of same-shaped trials trains as one computation.

Every tensor has a leading model axis M. Each model keeps its own seed (init stream
and batch-order stream), input transform, initialisation and hyperparameters; one
model alone is simply M = 1. The training data stay in their storage dtype (uint8
images) on the device; each step gathers the rows of every model's batch with
``index_select`` and applies that model's affine input transform.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import _equivalence, _losses, _models
from . import optim as _optim
from ._runtime import flush_denormals, tune_malloc
from ._data import Dataset, DataError, load_fashion_mnist, load_sklearn, load_user
from ._spec import Trial
from ._synthetic import SYNTHETIC, add_features
from ._transforms import make_transform

# ----------------------------------------------------------------------------- data


@dataclass
class Split:
    """A data set split into train / validation / test arrays (numpy, storage dtype)."""

    name: str
    task: str
    n_classes: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


_DATA_CACHE: dict[str, Dataset] = {}


def load_dataset(data: dict, data_dir: str | None = None) -> Dataset:
    """The raw data set a resolved ``data`` section names (cached per process)."""
    key = repr((data["dataset"], data.get("dir") or data_dir, data["verify"], data.get("path"), data.get("target"),
                data.get("task"), data["test_fraction"], data["split_seed"], data.get("n_samples"), data.get("noise")))
    if key not in _DATA_CACHE:
        name = data["dataset"]
        if name == "fashion-mnist":
            ds = load_fashion_mnist(data.get("dir") or data_dir, verify=data["verify"])
        elif name in SYNTHETIC:
            kw = {"n_train": data["n_samples"]} if data.get("n_samples") else {}
            if name == "sin-plus-y":
                kw["noise"] = data["noise"]
            ds = SYNTHETIC[name](seed=data["split_seed"], **kw)
        elif name == "file":
            if not data.get("path"):
                raise DataError("data.dataset = 'file' needs data.path (an .npz with X, y or a .csv)")
            ds = load_user(data["path"], data.get("target"), data.get("task"), data["test_fraction"],
                           data["split_seed"])
        else:
            ds = load_sklearn(name, data["test_fraction"], data["split_seed"])
        _DATA_CACHE[key] = ds
    return _DATA_CACHE[key]


def split_dataset(ds: Dataset, data: dict) -> Split:
    """Apply subsets and the validation split (taken from the end of training, as Keras does)."""
    Xtr, ytr, Xte, yte = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    if data.get("train_subset"):
        Xtr, ytr = Xtr[: data["train_subset"]], ytr[: data["train_subset"]]
    if data.get("test_subset"):
        Xte, yte = Xte[: data["test_subset"]], yte[: data["test_subset"]]
    v = data["validation"]
    n_val = int(round(v * len(Xtr))) if v < 1 else int(v)
    if n_val >= len(Xtr):
        raise DataError(f"data.validation = {v} leaves no training samples out of {len(Xtr)}")
    cut = len(Xtr) - n_val
    return Split(ds.name, ds.task, ds.n_classes, Xtr[:cut], ytr[:cut], Xtr[cut:], ytr[cut:], Xte, yte)


# ----------------------------------------------------------------------------- devices and groups


def _want_compile(setting: bool | None, n_values: int, device: torch.device) -> bool:
    """torch.compile the training step? ``train.compile`` decides when set; else the
    SCALELAB_COMPILE variable (0/1); else only where the run's work (parameter values ×
    steps) repays the compile. Measured on a 2-core CPU for the 784-128-10 MLP at 15 models:
    compiling costs 10 s with an empty cache (2 s once cached) and saves 7.9 ms of an
    11.1 ms eager step, about 5 ns per parameter value and step; 1e9 values (6 models for
    one Fashion-MNIST epoch) is where even a first compile breaks even."""
    if setting is not None:
        return setting
    env = os.environ.get("SCALELAB_COMPILE")
    if env in ("0", "1"):
        return env == "1"
    return n_values >= 1e9


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device = {name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return dev


# Spec keys that change the *shape* or the code of the computation: trials agreeing on
# all of them can share a stacked group. Everything else (seed, input transform, init,
# lr, eps, betas, momentum, decay, clip, ...) varies per model inside a group.
def group_key(trial: Trial) -> str:
    s = trial.spec
    o = s["optim"]
    m = s["model"]
    shape = dict(data=s["data"], features=s["input"]["features"],  # extra columns change the input width
                 model={k: m[k] for k in ("kind", "hidden", "conv", "kernel", "batchnorm", "bn_momentum", "bn_eps",
                                           "activation")},
                 loss=(s["loss"]["name"], s["loss"]["from_logits"]),
                 optim=("adam" if o["name"] in ("adam", "adamw") else "sgd", o["nesterov"]),
                 l2=o["l2"] > 0, train=s["train"],  # a penalty term changes the computed graph
                 probes=s.get("probes"))
    return json.dumps(shape, sort_keys=True, default=str)


def auto_group_size(n_params: int, n_features: int, batch: int, device: torch.device) -> int:
    """Models per stacked group: on CPU past ~32 models per group the matmuls are already
    large enough; on a GPU, as many as memory comfortably holds."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        per_model = 4 * (6 * n_params + 4 * batch * n_features)
        return int(max(1, min(4096, 0.5 * free // per_model)))
    return 32


def default_group_size(trial: Trial, data_dir: str | None = None, device: str | None = None) -> int:
    """The spec's ``train.group_size``, else :func:`auto_group_size` for its device and shapes."""
    s = trial.spec
    if s["train"].get("group_size"):
        return s["train"]["group_size"]
    dev = resolve_device(device or s["train"]["device"])
    n_features = load_dataset(s["data"], data_dir).n_features
    sizes = [n_features, *s["model"]["hidden"], 10]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return auto_group_size(n_params, n_features, s["train"]["batch_size"], dev)


def plan_groups(trials: list[Trial], max_size: int | None = None, data_dir: str | None = None,
                device: str | None = None) -> list[list[Trial]]:
    """Partition trials into groups that share a group key, each at most ``max_size``
    (balanced: 15 trials with size 8 become 8 + 7)."""
    by_key: dict[str, list[Trial]] = {}
    for t in trials:
        by_key.setdefault(group_key(t), []).append(t)
    groups = []
    for members in by_key.values():
        size = max_size or default_group_size(members[0], data_dir, device)
        n = math.ceil(len(members) / size)
        per = math.ceil(len(members) / n)
        groups += [members[i: i + per] for i in range(0, len(members), per)]
    return groups


# ----------------------------------------------------------------------------- training


@dataclass
class TrialResult:
    trial: Trial
    status: str                           # "done" or "diverged"
    diverged_step: int | None
    epochs: list[dict]                    # per-epoch metrics
    wall_s: float
    probes: list[tuple] = field(default_factory=list)   # (step, probe, name, value)


def _fit_input_transforms(trials: list[Trial], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's input transform fitted on the training inputs: scale_, offset_ of shape (M, D)."""
    cache: dict[str, tuple] = {}
    scales, offsets = [], []
    for t in trials:
        inp = t.spec["input"]
        key = repr(sorted(inp.items()))
        if key not in cache:
            name = inp["transform"]
            params = {"scale": {"factor": inp["scale"]},
                      "standardize": {"per_feature": inp["per_feature"]},
                      "minmax": {"feature_range": inp["feature_range"], "per_feature": inp["per_feature"]},
                      "none": {}}[name]
            tf = make_transform(name, **params)
            if name in ("none", "scale"):
                tf.fit(X[:1])  # learns nothing from the data
            else:
                tf.fit(X)
            cache[key] = (tf.scale_, tf.offset_)
        scales.append(cache[key][0])
        offsets.append(cache[key][1])
    return np.stack(scales), np.stack(offsets)


def check_trial(spec: dict, ds: Dataset) -> None:
    """What a spec asks that its data set cannot give: one actionable ValueError."""
    classification = ds.task == "classification"
    loss = spec["loss"]["name"]
    if classification != (loss == "crossentropy"):
        raise ValueError(f"loss.name = {loss!r} does not fit the {ds.task} data set {ds.name!r}; use "
                         f"{'crossentropy' if classification else 'mse or mae'}")
    if classification and spec["target"]["transform"] != "none":
        raise ValueError(f"target.transform applies to regression targets; {ds.name!r} is a classification task "
                         f"(leave target.transform = 'none')")
    if spec["model"]["kind"] == "fcn" and not (ds.meta.get("image_shape") or ds.name == "fashion-mnist"):
        raise ValueError(f"model.kind = 'fcn' needs image-shaped inputs; data set {ds.name!r} has none")


def check_trials(trials: list[Trial], data_dir: str | None = None) -> None:
    """:func:`check_trial` for each distinct setup, before anything trains."""
    seen = set()
    for t in trials:
        key = json.dumps([t.spec["data"], t.spec["loss"]["name"], t.spec["target"]["transform"],
                          t.spec["model"]["kind"]], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            check_trial(t.spec, load_dataset(t.spec["data"], data_dir))


class StackedGroup:
    """The state of one stacked group: data on the device, parameters, optimizer."""

    def __init__(self, trials: list[Trial], data_dir: str | None = None, device: str | None = None):
        tune_malloc()
        self.trials = trials
        s = trials[0].spec
        self.spec = s
        keys = {group_key(t) for t in trials}
        if len(keys) > 1:
            raise ValueError("these trials differ in shape (data, model or loss) and cannot share a stacked group; "
                             "plan_groups splits a study into groups that can")
        self.device = resolve_device(device or s["train"]["device"])
        self.dtype = torch.float64 if s["train"]["dtype"] == "float64" else torch.float32
        ds = load_dataset(s["data"], data_dir)
        self.split = split_dataset(ds, s["data"])
        sp = self.split
        if s["input"]["features"]:  # user-defined columns, computed from the raw ones
            for part in ("X_train", "X_val", "X_test"):
                setattr(sp, part, add_features(getattr(sp, part), s["input"]["features"]))
        self.M = M = len(trials)
        self.n_train, D = sp.X_train.shape
        self.classification = sp.task == "classification"
        n_out = sp.n_classes if self.classification else sp.y_train.shape[1]
        m = s["model"]
        self.image_shape = ds.meta.get("image_shape") or ((1, 28, 28) if ds.name == "fashion-mnist" else None)
        for t in trials:
            check_trial(t.spec, ds)
        self.layers = _models.net_layers(D, m["hidden"], n_out, m["batchnorm"],
                                         m["conv"] if m["kind"] == "fcn" else None, m["kernel"], self.image_shape)
        # A plain MLP (no BN) runs the lean path the probes know layer by layer.
        self.is_mlp = m["kind"] == "mlp" and not m["batchnorm"]
        # The plain MLP's gradients by hand (SCALELAB_AUTOGRAD=1: through autograd instead).
        self.manual_backward = self.is_mlp and os.environ.get("SCALELAB_AUTOGRAD") != "1"
        self.bn_momentum, self.bn_eps = m["bn_momentum"], m["bn_eps"]
        self.activation = s["model"]["activation"]
        self.loss_name, self.from_logits = s["loss"]["name"], s["loss"]["from_logits"]
        dev, dt = self.device, self.dtype

        def to_dev(X, y):
            Xt = torch.as_tensor(X if X.dtype == np.uint8 else X.astype(np.float64)).to(dev)
            Xt = Xt if Xt.dtype == torch.uint8 else Xt.to(dt)
            yt = torch.as_tensor(y).to(dev)
            return Xt, (yt if self.classification else yt.to(dt))

        self.X_train, self.y_train = to_dev(sp.X_train, sp.y_train)
        self.X_val, self.y_val = to_dev(sp.X_val, sp.y_val)
        self.X_test, self.y_test = to_dev(sp.X_test, sp.y_test)

        scale, offset = _fit_input_transforms(trials, sp.X_train)
        # A per-model scalar scale with no offset (the common "divide by 255") is one
        # multiply by an (M, 1, 1) tensor; only a per-feature transform needs (M, 1, D).
        if np.all(offset == 0) and np.all(scale == scale[:, :1]):
            self.in_scale = torch.as_tensor(scale[:, :1, None], dtype=dt, device=dev)
            self.in_offset = None
        else:
            self.in_scale = torch.as_tensor(scale[:, None, :], dtype=dt, device=dev)
            self.in_offset = torch.as_tensor(offset[:, None, :], dtype=dt, device=dev)

        per_model = [_models.init_net(self.layers, t.spec["model"]["init"], t.spec["model"]["init_scale"],
                                      t.spec["model"]["bias_init"], t.seed) for t in trials]
        # input.equivalent_to: the first kernel's init and hyperparameters rescaled so the
        # model trains exactly as it would on the inputs it is declared equivalent to.
        eq = [_equivalence.trial_parametrization(t.spec) for t in trials]
        W1 = self.layers[0].weight
        for p, e in zip(per_model, eq):
            if e is not None:
                p[W1] = p[W1] * e.init_scale
        params = _models.stack_params(per_model, dt, dev)
        if self.manual_backward:
            # Kernels stored transposed, (M, out, in) in memory, seen as (M, in, out): the
            # weight gradient d^T·x then comes out in the row-major layout MKL writes fastest
            # (measured: a whole step 7.5 → 6.9 ms at 32 models).
            for layer in _models.weighted(self.layers):
                params[layer.weight] = params[layer.weight].transpose(1, 2).contiguous().transpose(1, 2)
        self.params = {k: v.requires_grad_() for k, v in params.items()}
        param_layers = {}
        self.weighted = _models.weighted(self.layers)
        self.buffers = {}
        for layer in self.layers:
            if isinstance(layer, _models.BatchNorm):  # no per-layer multipliers: index None
                param_layers[layer.gamma] = param_layers[layer.beta] = (None, False)
                self.buffers[layer.gamma + ".mean"] = torch.zeros(M * layer.channels, dtype=dt, device=dev)
                self.buffers[layer.gamma + ".var"] = torch.ones(M * layer.channels, dtype=dt, device=dev)
            else:
                param_layers[layer.weight] = (layer.index, True)
                param_layers[layer.bias] = (layer.index, False)
        optims = [t.spec["optim"] for t in trials]
        hp = _optim.group_hyperparameters(optims, param_layers, dt, dev)
        if any(e is not None for e in eq):
            for name, field in (("lr", "lr_mult"), ("eps", "eps_mult"), ("wd", "wd_mult")):
                f = torch.tensor([getattr(e, field) if e else 1.0 for e in eq], dtype=dt, device=dev).view(M, 1, 1)
                hp[name][W1] = hp[name][W1] * f
        self.hp = hp   # per-parameter hyperparameter tensors (M, 1, 1), read by the optimizer each step
        steps = math.ceil(self.n_train / s["train"]["batch_size"]) * s["train"]["epochs"]
        n_values = sum(p.numel() for p in self.params.values()) * steps
        compile = _want_compile(s["train"].get("compile"), n_values, dev)
        # The plain MLP compiles its whole step (inputs, forward, backward by hand, optimizer)
        # as one graph: on a CPU the ~30 small elementwise ops around the matmuls cost as
        # much as the optimizer (measured 7.3 → 6.4 ms per step at 32 models, 3.5 → 3.0 at 15).
        # Other models compile only the optimizer step.
        self.opt = _optim.FusedOptimizer([o["name"] for o in optims], self.params, hp,
                                         nesterov=bool(optims[0]["nesterov"]),
                                         compile=compile and not self.manual_backward)
        self._fused = _optim.compile_step(self._fused_step) if compile and self.manual_backward else None
        self.compiled = self.opt.compiled or self._fused is not None
        self.l2 = None
        if any(o["l2"] > 0 for o in optims):
            self.l2 = {layer.weight: torch.tensor([o["l2"] * o["l2_mult"][layer.index] for o in optims],
                                                  dtype=dt, device=dev) for layer in self.weighted}
            self.l2[W1] = self.l2[W1] * torch.tensor([e.l2_mult if e else 1.0 for e in eq], dtype=dt, device=dev)
        self.clip = torch.tensor([t.spec["loss"]["clip"] for t in trials], dtype=dt, device=dev).view(M, 1)
        # target transforms (regression): fitted on training targets, per model (M, 1, T)
        self.t_scale = self.t_offset = None
        if not self.classification and any(t.spec["target"]["transform"] != "none" for t in trials):
            ts, to = _fit_target_transforms(trials, sp.y_train)
            self.t_scale = torch.as_tensor(ts[:, None, :], dtype=dt, device=dev)
            self.t_offset = torch.as_tensor(to[:, None, :], dtype=dt, device=dev)
        self.shuffle_rngs = [np.random.default_rng([t.seed, 1]) for t in trials]
        self.batch_size = s["train"]["batch_size"]
        self.epochs = s["train"]["epochs"]
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.step = 0

    # -- pieces of a step

    def inputs(self, X: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of shape (M, b) gathered from X and transformed per model → (M, b, D)."""
        M, b = idx.shape
        x = X.index_select(0, idx.reshape(-1)).view(M, b, -1)
        x = x * self.in_scale  # uint8 * float: converted and scaled in one pass
        if self.in_offset is not None:
            x = x + self.in_offset
        return x

    def targets(self, y: torch.Tensor, idx: torch.Tensor, original: bool = False) -> torch.Tensor:
        """Rows ``idx`` (M, b) of the targets, in each model's transformed units unless ``original``."""
        M, b = idx.shape
        t = y.index_select(0, idx.reshape(-1))
        if self.classification:
            return t.view(M, b)
        t = t.view(M, b, -1)
        if self.t_scale is not None and not original:
            t = t * self.t_scale + self.t_offset
        return t

    def to_original(self, out: torch.Tensor) -> torch.Tensor:
        """Predictions back in the targets' original units (the inverse target transform)."""
        return out if self.t_scale is None else (out - self.t_offset) / self.t_scale

    def forward(self, params, x, taps=None, training: bool = False):
        if self.is_mlp:
            return _models.mlp_forward(params, self.layers, x, self.activation, taps)
        return _models.net_forward(params, self.buffers, self.layers, x, self.activation, training, self.bn_momentum,
                                   self.bn_eps, self.image_shape)

    def per_sample(self, params, x, y, taps=None, training: bool = False):
        out = self.forward(params, x, taps, training)
        return self.loss_per_sample(out, y), out

    def loss_per_sample(self, out, y):
        """Per-sample losses (M, b) of outputs (M, b, n_out)."""
        return _losses.per_sample_loss(self.loss_name, self.from_logits, out, y, self.clip)

    @torch.no_grad()
    def loss_and_grads(self, x, y, params=None):
        """The plain-MLP step's loss (M,), outputs and gradients by hand (no autograd graph)."""
        params = self.params if params is None else params
        per, out, grads = _models.mlp_forward_backward(
            params, self.layers, x, self.activation,
            lambda o: _losses.per_sample_loss_and_grad(self.loss_name, self.from_logits, o, y, self.clip))
        loss = per.mean(1)
        if self.l2 is not None:
            loss = loss + _optim.l2_penalty(params, self.l2)
            for k, coef in self.l2.items():
                grads[k] = grads[k] + (2 * coef).view(-1, 1, 1) * params[k]
        return loss, out, grads

    def _fused_step(self, X, y_all, idx, ps, *opt_args):
        """A whole plain-MLP step as one function for torch.compile: gather and transform
        the batch, loss and gradients by hand, the optimizer's in-place update."""
        names = self.opt.names
        x, y = self.inputs(X, idx), self.targets(y_all, idx)
        loss, out, grads = self.loss_and_grads(x, y, dict(zip(names, ps)))
        gs = [grads[n] for n in names]
        self.opt.kernel(ps, gs, *opt_args)
        return loss, out, y, gs

    @torch.no_grad()
    def _try_fused(self, idx):
        """The compiled whole step; None where it does not apply (a short last batch would
        need a second compile) or compiling failed (then the eager step from here on)."""
        if self._fused is None or idx.shape[1] != self.batch_size:
            return None
        ps = [self.params[n] for n in self.opt.names]
        args = self.opt.next_step_args()
        try:
            loss, out, y, gs = self._fused(self.X_train, self.y_train, idx, ps, *args)
        except Exception as e:  # no C++ compiler, an unsupported platform: same arithmetic, eagerly
            import warnings

            warnings.warn(f"torch.compile of the training step failed ({type(e).__name__}: {e}); running eagerly")
            self._fused, self.compiled = None, self.opt.compiled
            self.opt.t -= 1
            return None
        self.grads = dict(zip(self.opt.names, gs))
        return loss, out, y

    def objective(self, params, x, y, taps=None, training: bool = False):
        """Per-model mean loss over the batch (+ the L2 penalty): shape (M,); and the outputs.
        ``training``: BatchNorm uses (and updates) batch statistics."""
        per, out = self.per_sample(params, x, y, taps, training)
        loss = per.mean(1)
        if self.l2 is not None:
            loss = loss + _optim.l2_penalty(params, self.l2)
        return loss, out

    def permutations(self) -> torch.Tensor:
        """This epoch's batch order of every model, from its own shuffle stream: (M, n_train)."""
        if self.spec["train"]["shuffle"]:
            perms = np.stack([rng.permutation(self.n_train) for rng in self.shuffle_rngs])
        else:
            perms = np.broadcast_to(np.arange(self.n_train), (self.M, self.n_train))
        return torch.as_tensor(perms, device=self.device)

    def train_step(self, idx: torch.Tensor):
        """One optimizer step on the batch rows ``idx`` (M, b); returns (loss (M,), outputs, targets)."""
        if (fused := self._try_fused(idx)) is not None:
            self.step += 1
            return fused
        x = self.inputs(self.X_train, idx)
        y = self.targets(self.y_train, idx)
        if self.manual_backward:
            loss, out, self.grads = self.loss_and_grads(x, y)
        else:
            loss, out = self.objective(self.params, x, y, training=True)
            names = list(self.params)
            grads = torch.autograd.grad(loss.sum(), [self.params[k] for k in names])
            self.grads = dict(zip(names, grads))
        self.opt.step(self.params, self.grads)  # in place: parameters keep their storage
        self.step += 1
        return loss.detach(), out.detach(), y

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
        """Metrics of every model on (X, y), each an array of shape (M,): ``loss`` (the training
        objective), for classification ``acc``; for regression ``mse`` in the targets' original
        units, ``r2`` against predicting each output's mean on this set (1 − SSE/SST, summed over
        outputs) and ``corr`` (Pearson, predictions vs targets over all outputs)."""
        M, n = self.M, len(X)
        nan = np.full(M, np.nan)
        if n == 0:
            return dict(loss=nan, acc=nan) if self.classification else dict(loss=nan, mse=nan, r2=nan, corr=nan)
        chunk = max(1, min(n, (1 << 24) // max(1, M * X.shape[1])))
        f64 = dict(dtype=torch.float64, device=self.device)
        loss_sum, correct = torch.zeros(M, **f64), torch.zeros(M, **f64)
        if not self.classification:
            T = y.shape[1]
            sse, sp, spp, spy = (torch.zeros(M, **f64) for _ in range(4))
            sy, syy = torch.zeros(T, **f64), torch.zeros(T, **f64)
        for i in range(0, n, chunk):
            idx = torch.arange(i, min(n, i + chunk), device=self.device).expand(M, -1)
            xb, yb = self.inputs(X, idx), self.targets(y, idx)
            per, out = self.per_sample(self.params, xb, yb)
            loss_sum += per.sum(1).double()
            if self.classification:
                correct += (out.argmax(-1) == yb).sum(1).double()
            else:
                p = self.to_original(out).double()
                yo = y[i: i + idx.shape[1]].double()                 # (b, T), the same rows for all models
                sse += (p - yo).pow(2).sum(dim=(1, 2))
                sp += p.sum(dim=(1, 2))
                spp += p.pow(2).sum(dim=(1, 2))
                spy += (p * yo).sum(dim=(1, 2))
                sy += yo.sum(0)
                syy += yo.pow(2).sum(0)
        loss = loss_sum / n
        if self.l2 is not None:
            loss = loss + _optim.l2_penalty(self.params, self.l2).double()
        res = dict(loss=loss.cpu().numpy())
        if self.classification:
            res["acc"] = (correct / n).cpu().numpy()
        else:
            N = n * T
            sst = (syy - sy.pow(2) / n).sum()
            res["mse"] = (sse / N).cpu().numpy()
            res["r2"] = (1 - sse / sst).cpu().numpy() if sst > 0 else nan
            cov = spy - sp * sy.sum() / N
            var_p, var_y = spp - sp.pow(2) / N, syy.sum() - sy.sum() ** 2 / N
            res["corr"] = (cov / (var_p * var_y).sqrt()).cpu().numpy()
        return res


def _fit_target_transforms(trials: list[Trial], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's target transform fitted on the training targets: scale_, offset_ of shape (M, T)."""
    out_s, out_o = [], []
    for t in trials:
        tg = t.spec["target"]
        params = {"scale": {"factor": tg["scale"]}, "standardize": {"per_feature": tg["per_feature"]},
                  "minmax": {"feature_range": tg["feature_range"], "per_feature": tg["per_feature"]},
                  "none": {}}[tg["transform"]]
        tf = make_transform(tg["transform"], **params).fit(y)
        out_s.append(tf.scale_)
        out_o.append(tf.offset_)
    return np.stack(out_s), np.stack(out_o)


def train_group(trials: list[Trial], data_dir: str | None = None, device: str | None = None,
                on_steps: Callable[[int], None] | None = None, probes=None) -> list[TrialResult]:
    """Train a group of same-shaped trials together; one result per trial, in order."""
    with flush_denormals(trials[0].spec["train"]["flush_denormals"]):
        return _train_group(trials, data_dir, device, on_steps, probes)


def _train_group(trials, data_dir, device, on_steps, probes) -> list[TrialResult]:
    t0 = time.perf_counter()
    g = StackedGroup(trials, data_dir, device)
    M, dev = g.M, g.device
    first_bad = torch.full((M,), -1, dtype=torch.int64, device=dev)
    history: list[list[dict]] = [[] for _ in range(M)]
    probe_rows: list[list[tuple]] = [[] for _ in range(M)]
    if probes is not None:
        probes.attach(g, probe_rows)
    report_every = 25
    for epoch in range(1, g.epochs + 1):
        perm = g.permutations()
        loss_sum = torch.zeros(M, dtype=torch.float64, device=dev)
        correct = torch.zeros(M, dtype=torch.float64, device=dev)
        for s in range(g.steps_per_epoch):
            idx = perm[:, s * g.batch_size: (s + 1) * g.batch_size]
            if probes is not None:
                probes.before_step(g, idx)
            loss, out, y = g.train_step(idx)
            if probes is not None:
                probes.after_step(g, idx, loss)
            b = idx.shape[1]
            # Keras's epoch loss: the running mean of batch losses weighted by batch size.
            loss_sum += loss.double() * b
            if g.classification:
                correct += (out.argmax(-1) == y).sum(1).double()
            bad = ~torch.isfinite(loss)
            first_bad = torch.where(bad & (first_bad < 0), g.step, first_bad)
            if on_steps is not None and (s + 1) % report_every == 0:
                on_steps(report_every)
        if on_steps is not None:
            on_steps(g.steps_per_epoch % report_every)
        train_loss = (loss_sum / g.n_train).cpu().numpy()
        train_acc = (correct / g.n_train).cpu().numpy() if g.classification else np.full(M, np.nan)
        ev = {"val": g.evaluate(g.X_val, g.y_val), "test": g.evaluate(g.X_test, g.y_test)}
        for m in range(M):
            rec = dict(epoch=epoch, train_loss=float(train_loss[m]), train_acc=float(train_acc[m]))
            for part, r in ev.items():
                rec.update({f"{part}_{k}": float(v[m]) for k, v in r.items()})
            history[m].append(rec)
    if probes is not None:
        probes.finish(g)
    wall = time.perf_counter() - t0
    bad_steps = first_bad.cpu().tolist()
    return [TrialResult(t, "diverged" if bad_steps[m] >= 0 else "done",
                        bad_steps[m] if bad_steps[m] >= 0 else None, history[m], wall / M, probe_rows[m])
            for m, t in enumerate(trials)]
