"""The PyTorch model, loss and optimizer as the step view needs them (:class:`TorchAdapter`);
the loop's hooks are in :mod:`._torch_watch`."""

from __future__ import annotations

import torch
from torch import nn

from ._checks_loop import check_optimizer_params, check_target_shape, check_unregistered, check_zero_grad
from ._model import CLASS_LOSSES, ModelDesc
from ._torch_describe import ACT_NAMES, describe_torch, loss_kind
from ._view import LayerInfo, flat_tap

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Mish,
               nn.Hardtanh, nn.ReLU6, nn.PReLU)
CLASSIFICATION_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)


class TorchAdapter:
    """A PyTorch module, its loss and optimizer, as the step view needs them (M = 1)."""

    framework = "pytorch"

    def __init__(self, model: nn.Module, loss_fn, optimizer: torch.optim.Optimizer, skipped: list | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"scalelab.watch: model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError("scalelab.watch: loss_fn must be the loss the loop calls (nn.CrossEntropyLoss(), "
                            f"F.nll_loss, or your own function); got {type(loss_fn).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"scalelab.watch: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        first = next(model.parameters(), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.dtype = first.dtype if first is not None else torch.float32
        self.loss_name, _, _ = loss_kind(loss_fn)
        # the probes' classification: one class index per row and logits out (what CrossEntropyLoss/NLLLoss take)
        self.classification = isinstance(loss_fn, CLASSIFICATION_LOSSES) or self.loss_name in CLASS_LOSSES
        self.clip = 0.0
        self.skipped: list[tuple[str, str]] = skipped if skipped is not None else []
        self._describe()

    def _describe(self) -> None:
        """Layers in registration order; parameters named as the engine names them
        (``dense0.W``, ``conv1.b``), the rest by their module path."""
        self.layers: list[LayerInfo] = []
        self.layouts: dict[str, tuple[torch.Tensor, str]] = {}   # view name -> (the parameter, its layout)
        self.tap_of: dict[nn.Module, tuple[str, int]] = {}       # module -> (tap kind, weighted index)
        counts = {"dense": 0, "conv": 0}
        last = -1
        seen = set()
        for name, mod in self.model.named_modules():
            kind = ("dense" if isinstance(mod, nn.Linear) else
                    "conv" if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) else None)
            if kind is not None and mod.bias is not None:
                last = counts["dense"] + counts["conv"]
                counts[kind] += 1
                info = LayerInfo(kind, last, name, f"{kind}{last}.W", f"{kind}{last}.b")
                self.layouts[info.weight] = (mod.weight, kind)
                self.layouts[info.bias] = (mod.bias, "bias")
                seen |= {id(mod.weight), id(mod.bias)}
                self.layers.append(info)
                self.tap_of[mod] = ("pre", last)
            elif isinstance(mod, ACTIVATIONS) and last >= 0:
                self.layers.append(LayerInfo("activation", last, name))
                self.tap_of[mod] = ("act", last)
            elif next(mod.children(), None) is None and any(True for _ in mod.parameters(recurse=False)):
                self.layers.append(LayerInfo(type(mod).__name__, -1, name))
        for pname, p in self.model.named_parameters():
            if id(p) not in seen and p.requires_grad:
                self.layouts[pname] = (p, "other")

    # -- layouts: the engine's 3-D (1, rows, cols) of each parameter, and back

    @staticmethod
    def to_view(t: torch.Tensor, layout: str) -> torch.Tensor:
        if layout in ("dense", "conv"):
            return t.reshape(t.shape[0], -1).t().unsqueeze(0)     # (1, fan_in, fan_out)
        if t.dim() == 2:
            return t.unsqueeze(0)
        return t.reshape(1, 1, -1)

    @staticmethod
    def from_view(v: torch.Tensor, like: torch.Tensor, layout: str) -> torch.Tensor:
        if layout in ("dense", "conv"):
            return v[0].t().reshape(like.shape)
        return v.reshape(like.shape)

    def params(self) -> dict[str, torch.Tensor]:
        return {k: self.to_view(p.detach(), lay) for k, (p, lay) in self.layouts.items()}

    def grads(self) -> dict[str, torch.Tensor]:
        return {k: self.to_view(p.grad if p.grad is not None else torch.zeros_like(p), lay)
                for k, (p, lay) in self.layouts.items()}

    # -- the model, evaluated on given parameters

    def forward(self, params, x, taps=None) -> torch.Tensor:
        names = {id(p): n for n, p in self.model.named_parameters()}
        given = {names[id(p)]: self.from_view(params[k], p, lay) for k, (p, lay) in self.layouts.items()}
        handles = []
        if taps is not None:
            for mod, (kind, i) in self.tap_of.items():
                handles.append(mod.register_forward_hook(self._tapper(taps, kind, i, mod)))
        was_training = self.model.training
        nn.Module.train(self.model, False)   # nn.Module's own: a model may define train() for its own loop
        try:
            out = torch.func.functional_call(self.model, given, (x,))
        finally:
            nn.Module.train(self.model, was_training)
            for h in handles:
                h.remove()
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"the model returns {type(out).__name__}, not one tensor")
        if taps is not None:
            self._check_taps(taps)
        return out.reshape(-1, out.shape[-1]) if out.dim() > 1 else out.reshape(-1, 1)

    def _tapper(self, taps, kind, i, mod):
        # a convolution's output and the activation after it: channels are the units
        channels_first = any(layer.kind == "conv" and layer.index == i for layer in self.layers)

        def hook(module, args, output):
            t = flat_tap(output, channels_first)
            if t is None:
                self._skip(type(module).__name__, "its output is not one tensor; no activation statistics")
                return
            taps[f"{kind}{i}"] = t
            if kind == "pre" and isinstance(args[0], torch.Tensor):
                taps[f"in{i}"] = flat_tap(args[0], channels_first)
        return hook

    def _check_taps(self, taps) -> None:
        weighted = [layer for layer in self.layers if layer.weighted]
        for layer in weighted[:-1]:   # the output layer's activation is the loss's business
            if f"act{layer.index}" not in taps:
                self._skip(layer.name, "its activation is not a module (e.g. F.relu in forward); no activation "
                                       "statistics or dead units")

    def _skip(self, name: str, why: str) -> None:
        if (name, why) not in self.skipped:
            self.skipped.append((name, why))

    def loss_per_sample(self, out, y) -> torch.Tensor:
        if self.classification:
            y = y.reshape(-1)
        elif y.dim() < out.dim() and out.shape[-1] == 1:
            y = y.reshape(out.shape)   # per sample: the row's own target (the loop may broadcast, see the checks)
        if isinstance(self.loss_fn, nn.Module) and hasattr(self.loss_fn, "reduction"):
            # the user's own loss module, unreduced; forward() rather than __call__: its hooks stay quiet
            reduction, self.loss_fn.reduction = self.loss_fn.reduction, "none"
            try:
                per = self.loss_fn.forward(out, y)
            finally:
                self.loss_fn.reduction = reduction
        elif self.loss_name.startswith("custom:") or isinstance(self.loss_fn, nn.Module):
            # the user's own function: one row at a time (it returns a mean)
            per = torch.stack([self.loss_fn(out[i:i + 1], y[i:i + 1]).reshape(()) for i in range(out.shape[0])])
        else:
            per = self.loss_fn(out, y, reduction="none")
        return per.reshape(out.shape[0], -1).mean(1) if per.dim() > 1 else per

    def model_output(self, out) -> torch.Tensor:
        return out

    # -- the model as the user wrote it (checks, one-run records, `scalelab show`)

    def run_with_hooks(self, x, hooks) -> torch.Tensor:
        handles = [m.register_forward_hook(h) for m, h in hooks]
        was_training = self.model.training
        nn.Module.train(self.model, False)
        try:
            with torch.no_grad():
                return self.model(x)
        finally:
            nn.Module.train(self.model, was_training)
            for h in handles:
                h.remove()

    def describe(self, x=None) -> ModelDesc:
        return describe_torch(self.model, self.loss_fn, self.optimizer, x, self.run_with_hooks)

    def _kernels(self) -> list:
        return [p for p, lay in self.layouts.values() if lay in ("dense", "conv")]

    def weight_rms(self) -> float | None:
        rms = [float(p.detach().float().pow(2).mean().sqrt()) for p in self._kernels()]
        rms = [r for r in rms if r > 0]
        return sorted(rms)[len(rms) // 2] if rms else None

    def weight_spreads(self) -> list[tuple[str, float]]:
        return [(li.name, float(self.layouts[li.weight][0].detach().float().std()))
                for li in self.layers if li.weighted]

    def grad_rms(self) -> dict[str, float]:
        return {f"layer{i}.grad_rms": float(p.grad.detach().float().pow(2).mean().sqrt())
                for i, p in enumerate(self._kernels()) if p.grad is not None}

    def unit_layers(self) -> list[tuple[int, str, str]]:
        out = []
        for mod, (kind, i) in self.tap_of.items():
            if kind == "act" and type(mod) in ACT_NAMES:
                name = next(li.name for li in self.layers if li.weighted and li.index == i)
                out.append((i, name, ACT_NAMES[type(mod)]))
        return out

    def loop_checks(self, d: ModelDesc) -> list:
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        held = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
        mine = {id(p) for p in trainable}
        found = check_optimizer_params(d, len(trainable), len(mine & held), len(held - {id(p) for p in
                                                                                         self.model.parameters()}))
        found += check_unregistered(d)
        w = getattr(self, "watcher", None)
        if w is not None:
            found += check_zero_grad(d, w.accumulated, w.steps_seen)
            if w.shapes is not None:
                found += check_target_shape(d, *w.shapes)
        return found

    # -- the optimizer

    @property
    def optimizer_family(self) -> str:
        if isinstance(self.optimizer, (torch.optim.Adam, torch.optim.AdamW)):
            return "adam"
        if self.optimizer.defaults.get("momentum", 0):
            return "momentum"
        return "sgd"

    def _state(self, p) -> dict:
        return self.optimizer.state.get(p, {})

    @property
    def optimizer_step(self) -> int:
        for p, _ in self.layouts.values():
            step = self._state(p).get("step")
            if step is not None:
                return int(step)
        return 0

    STATES = {"m": "exp_avg", "v": "exp_avg_sq", "buf": "momentum_buffer"}

    def optimizer_state(self, name: str) -> dict[str, torch.Tensor]:
        key = self.STATES.get(name)
        out = {k: self.to_view(self._state(p)[key], lay) for k, (p, lay) in self.layouts.items()
               if key in self._state(p)}
        if not out:
            raise KeyError(f"the {type(self.optimizer).__name__} optimizer has no state {name!r}")
        return out

    def hyperparameter(self, name: str) -> dict[str, torch.Tensor]:
        groups = {id(p): g for g in self.optimizer.param_groups for p in g["params"]}
        values = {"lr": lambda g: g["lr"], "eps": lambda g: g.get("eps", 0.0), "wd": lambda g: g.get("weight_decay", 0.0),
                  "b1": lambda g: g.get("betas", (0.0, 0.0))[0], "b2": lambda g: g.get("betas", (0.0, 0.0))[1],
                  "mom": lambda g: g.get("momentum", 0.0), "keras": lambda g: 0.0}
        if name not in values:
            raise KeyError(f"no hyperparameter {name!r}; known: {', '.join(values)}")
        return {k: torch.full((1, 1, 1), float(values[name](groups[id(p)])), dtype=self.dtype, device=self.device)
                for k, (p, _) in self.layouts.items()}
