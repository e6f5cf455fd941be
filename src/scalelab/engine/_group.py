"""The state of one stacked group and the pieces of its step."""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from .. import _losses
from .. import optim as _optim
from .._runtime import tune_malloc
from .._spec import Trial
from ..data import image_shape, trial_split
from ..models import FAST_BACKWARDS, Pass, build_model
from . import _rows, _state
from ._evaluate import EvaluateMixin
from ._plan import check_trial, group_key, resolve_device, want_compile
from ._step import StepMixin


class StackedGroup(StepMixin, EvaluateMixin):
    """A group of same-shaped trials as one stacked computation: data on the device,
    parameters and optimizer state with a leading model axis M, each model's own seed
    (init and batch order), transforms and hyperparameters. One model alone is M = 1.

    The training data stay in their storage dtype (uint8 images) on the device; each step
    gathers the rows of every model's batch with ``index_select`` and applies that model's
    affine input transform. ``model`` (optional) replaces the model the spec describes.
    """

    def __init__(self, trials: list[Trial], data_dir: str | None = None, device: str | None = None):
        tune_malloc()
        self.trials = trials
        s = self.spec = trials[0].spec
        if len({group_key(t) for t in trials}) > 1:
            raise ValueError("these trials differ in shape (data, model or loss) and cannot share a stacked group; "
                             "plan_groups splits a study into groups that can")
        self.device = dev = resolve_device(device or s.train.device)
        self.dtype = dt = torch.float64 if s.train.dtype == "float64" else torch.float32
        ds, self.split = trial_split(s, data_dir)
        sp = self.split
        for t in trials:
            check_trial(t.spec, ds)
        self.M = M = len(trials)
        self.n_train = sp.X_train.shape[0]
        self.classification = sp.task == "classification"
        n_out = sp.n_classes if self.classification else sp.y_train.shape[1]
        self.image_shape = image_shape(ds)
        self.dataset_meta = ds.meta
        # a registered loss (None for the built-in ones); a model family of its own builds its model
        self.custom_loss = _losses.make_loss(s.loss.name, self)
        if s.model.kind == "trajectory":
            self.model = self.custom_loss.build_model(sp.X_train.shape[1])
        else:
            self.model = build_model(s.model, sp.X_train.shape[1], n_out, self.image_shape)
        self.layers = self.model.layers
        self.weighted = self.model.weighted
        # gradients by hand where a registered fast path covers the model (SCALELAB_AUTOGRAD=1: never)
        fast = next((f for f in FAST_BACKWARDS if f.applies(self.model)), None)
        self.fast_backward = None if os.environ.get("SCALELAB_AUTOGRAD") == "1" else fast
        self.manual_backward = self.fast_backward is not None
        self.loss_name, self.from_logits = s.loss.name, s.loss.from_logits

        self.X_train, self.y_train = _state.to_device(sp.X_train, sp.y_train, self.classification, dt, dev)
        self.X_val, self.y_val = _state.to_device(sp.X_val, sp.y_val, self.classification, dt, dev)
        self.X_test, self.y_test = _state.to_device(sp.X_test, sp.y_test, self.classification, dt, dev)
        self.in_scale, self.in_offset = _state.input_affine(*_state.fit_input_transforms(trials, sp.X_train), dt, dev)
        # regression: each model's target transform (M, 1, T), fitted on training targets
        self.t_scale = self.t_offset = None
        if not self.classification and any(t.spec.target.transform != "none" for t in trials):
            ts, to = _state.fit_target_transforms(trials, sp.y_train)
            self.t_scale = torch.as_tensor(ts[:, None, :], dtype=dt, device=dev)
            self.t_offset = torch.as_tensor(to[:, None, :], dtype=dt, device=dev)

        eq = _state.equivalences(trials)
        self.params = _state.init_params(trials, self.model, eq, dt, dev, transposed_kernels=self.manual_backward)
        self.buffers = self.model.buffers(M, dt, dev)
        self.hp = _state.hyperparameters(trials, self.model, eq, dt, dev)
        self.l2 = _state.l2_coefficients(trials, self.model, eq, dt, dev)
        self.l1 = _optim.l1_coefficients([t.spec.optim for t in trials], self.model, dt, dev)  # proximal
        self.clip = torch.tensor([t.spec.loss.clip for t in trials], dtype=dt, device=dev).view(M, 1)

        self.batch_size = s.train.batch_size
        self.epochs = s.train.epochs
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        # train.steps: as many epochs as the steps need, the last one cut short
        self.total_steps = s.train.steps or self.steps_per_epoch * self.epochs
        if s.train.steps:
            self.epochs = math.ceil(s.train.steps / self.steps_per_epoch)
        # a row-sparse family's tables are not in the compiled kernel (their rows update eagerly)
        sparse = _rows.row_tables(self.model, _optim.group_family([t.spec.optim.name for t in trials]))
        n_values = sum(p.numel() for k, p in self.params.items() if k not in sparse) * self.total_steps
        compile = want_compile(s.train.compile, n_values, dev)
        # The plain MLP compiles its whole step (inputs, forward, backward by hand, optimizer)
        # as one graph: on a CPU the ~30 small elementwise ops around the matmuls cost as
        # much as the optimizer (measured 7.3 → 6.4 ms per step at 32 models, 3.5 → 3.0 at 15).
        # Other models compile only the optimizer step.
        optims = [t.spec.optim for t in trials]
        self.compile_wanted = compile
        self.compile_error: str | None = None   # why the compile failed over to eager (printed once, recorded)
        self.opt = _optim.FusedOptimizer([o.name for o in optims], _rows.trainable(self.model, self.params), self.hp,
                                         nesterov=bool(optims[0].nesterov), compile=compile and not self.manual_backward,
                                         on_fallback=self._on_compile_fallback)
        self.row_tables = _rows.row_tables(self.model, self.opt.definition)   # lazy/sparse updates
        self._fused = None
        if compile and self.manual_backward:
            self._fused = _optim.compile_step(self._fused_step, lambda e: self._on_compile_fallback("training step", e))
        self.compiled = self.opt.compiled or self._fused is not None
        self.shuffle_rngs = [np.random.default_rng([t.seed, 1]) for t in trials]
        self.step = 0
        self.grads: dict[str, torch.Tensor] = {}
        self.grad_rows: dict[str, torch.Tensor] = {}   # row-sparse tables: the flat rows of their (U, d) grads

    def _on_compile_fallback(self, what: str, e: BaseException) -> None:
        from ..optim._compile import say_fallback

        self.compile_error = say_fallback(what, e)

    def path(self) -> dict:
        """Which arithmetic the steps ran, stored with each trial: ``step`` compiled or eager,
        the vector instruction set of ATen's kernels (``cpu_capability``) and, compiled on a
        CPU, of the generated code (``vec_isa``); ``compile_error`` when a wanted compile
        failed over to eager. Compiled and eager steps differ in the last float32 digits."""
        out = dict(step="compiled" if self.compiled else "eager")
        if self.device.type == "cpu":
            out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
            if self.compiled:
                from ..optim._compile import vec_isa

                out["vec_isa"] = vec_isa()
        if self.compile_error is not None:
            out["compile_error"] = self.compile_error
        return out

    # -- data

    def inputs(self, X: torch.Tensor, idx: torch.Tensor, buf: dict | None = None) -> torch.Tensor:
        """Rows ``idx`` of shape (M, b) gathered from X and transformed per model → (M, b, D).
        ``buf`` (a dict the caller keeps across chunks of one pass over a set): the rows are
        gathered into one reused buffer. A fresh (M·b, D) block per chunk, with malloc tuned
        as tune_malloc does, was kept by the allocator: 20 models × 5,000 rows × 10,000
        features grew the process by 17 MB a chunk, 3 GB in all; one buffer grows it by none."""
        M, b = idx.shape
        flat = idx.reshape(-1)
        if buf is None:
            x = X.index_select(0, flat).view(M, b, -1)
        else:
            t = buf.get("rows")
            if t is None or t.shape[0] < flat.numel() or t.dtype != X.dtype:
                t = buf["rows"] = torch.empty((flat.numel(), *X.shape[1:]), dtype=X.dtype, device=X.device)
            x = torch.index_select(X, 0, flat, out=t[: flat.numel()]).view(M, b, -1)
        if x.dtype == torch.int64:  # token ids stay exact: no transform, no cast
            return x
        if buf is not None:   # the same arithmetic into a second reused buffer
            dt = torch.result_type(x, self.in_scale)
            t = buf.get("scaled")
            if t is None or t.numel() < x.numel() or t.dtype != dt:
                t = buf["scaled"] = torch.empty(x.numel(), dtype=dt, device=x.device)
            out = torch.mul(x, self.in_scale, out=t[: x.numel()].view(x.shape))
            return out if self.in_offset is None else out.add_(self.in_offset)
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

    def permutations(self) -> torch.Tensor:
        """This epoch's batch order of every model, from its own shuffle stream: (M, n_train)."""
        if self.spec.train.shuffle:
            perms = np.stack([rng.permutation(self.n_train) for rng in self.shuffle_rngs])
        else:
            perms = np.broadcast_to(np.arange(self.n_train), (self.M, self.n_train))
        return torch.as_tensor(perms, device=self.device)

    # -- the model and its objective

    def forward(self, params, x, taps=None, training: bool = False, targets=None):
        """Outputs (M, b, n_out) of inputs (M, b, D); ``training``: BatchNorm uses (and
        updates) batch statistics; ``taps`` receives named intermediate tensors; ``targets``
        reach the layers that read them (a conditional VAE's posterior)."""
        return self.model.forward(params, x, Pass(self.M, training, self.buffers, taps, targets=targets,
                                                  noise=self.noise(self.step if training else -1)))

    def noise(self, stream: int):
        """``draw(shape)`` → (M, *shape) standard normals, model m's from its own seed and
        ``stream`` (the step while training, -1 when evaluating): the same numbers whatever
        group a trial trains in, and after a resume from a checkpoint."""
        def draw(shape):
            return torch.as_tensor(np.stack([np.random.default_rng([t.seed, 5, stream + 1]).standard_normal(shape)
                                             for t in self.trials]), dtype=self.dtype, device=self.device)
        return draw

    def loss_per_sample(self, out, y):
        """Per-sample losses (M, b) of outputs (M, b, n_out)."""
        if self.custom_loss is not None:
            return self.custom_loss.per_sample(out, y)
        return _losses.per_sample_loss(self.loss_name, self.from_logits, out, y, self.clip)

    def per_sample(self, params, x, y, taps=None, training: bool = False):
        out = self.forward(params, x, taps, training, targets=y)
        return self.loss_per_sample(out, y), out

    def objective(self, params, x, y, taps=None, training: bool = False):
        """Per-model mean loss over the batch (+ the L2 penalty): shape (M,); and the outputs."""
        per, out = self.per_sample(params, x, y, taps, training)
        loss = per.mean(1)
        if self.l2 is not None:
            loss = loss + _optim.l2_penalty(params, self.l2)
        return loss, out

    @torch.no_grad()
    def loss_and_grads(self, x, y, params=None):
        """The fast path's loss (M,), outputs and gradients by hand (no autograd graph)."""
        params = self.params if params is None else params
        per, out, grads = self.fast_backward.forward_backward(
            params, self.model, x,
            lambda o: _losses.per_sample_loss_and_grad(self.loss_name, self.from_logits, o, y, self.clip))
        loss = per.mean(1)
        if self.l2 is not None:
            loss = loss + _optim.l2_penalty(params, self.l2)
            for k, coef in self.l2.items():
                grads[k] = grads[k] + (2 * coef).view(-1, 1, 1) * params[k]
        return loss, out, grads

    # -- public changes of state

    def scale_hyperparameter(self, name: str, param: str, model: int, multiply: float = 1.0,
                             divide: float = 1.0) -> None:
        """Multiply (or divide) one model's hyperparameter ``name`` (lr, eps, wd, …) of parameter
        ``param``: for checks that compare a changed model with its group (the equivalence
        check's "lr only" arm). The optimizer reads the new value from its next step on."""
        with torch.no_grad():
            if multiply != 1.0:
                self.hp[name][param][model] *= multiply
            if divide != 1.0:
                self.hp[name][param][model] /= divide
