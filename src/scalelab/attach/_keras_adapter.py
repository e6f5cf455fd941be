"""The Keras model as the step view reads it (:class:`KerasAdapter`, torch backend; the
TensorFlow and JAX backends subclass it in ``_keras_backends``): its layers and taps, the
user's loss per sample, Keras's optimizer state, and what the checks read of the model."""

from __future__ import annotations

import numpy as np
import torch

import keras

from ._keras_describe import activation_name, describe_keras
from ._model import ModelDesc
from ._view import LayerInfo, flat_tap

SOFTMAX = keras.activations.softmax
SIGMOID = keras.activations.sigmoid
LINEAR = keras.activations.linear


def leaf_layers(layer) -> list:
    subs = [s for s in getattr(layer, "layers", []) or [] if s is not layer]
    return [leaf for s in subs for leaf in leaf_layers(s)] if subs else [layer]


class KerasAdapter:
    """A built Keras 3 model on the torch backend, as the step view needs it (M = 1)."""

    framework = "keras"
    # a sigmoid output read as its logits, where the backend's binary cross-entropy reads them (TensorFlow:
    # see _keras_backends); here the loss clips the sigmoid's probabilities, so the view reads them
    sigmoid_layer = None

    @property
    def logits_layer(self):
        """The output layer whose pre-activation (logits) the view reads as the model's output."""
        return self.softmax_layer if self.softmax_layer is not None else self.sigmoid_layer

    def __init__(self, model, skipped: list | None = None):
        self.model = model
        variables = model.trainable_variables or model.variables
        self.device = variables[0].value.device if variables else torch.device("cpu")
        self.dtype = variables[0].value.dtype if variables else torch.float32
        self.skipped: list[tuple[str, str]] = skipped if skipped is not None else []
        self.leaves = [layer for layer in leaf_layers(model) if not isinstance(layer, keras.layers.InputLayer)]
        self.token_inputs = bool(self.leaves) and isinstance(self.leaves[0], keras.layers.Embedding)
        self._describe()
        self._loss_fn()

    def _describe(self) -> None:
        self.layers: list[LayerInfo] = []
        self.layouts: dict[str, tuple[object, str]] = {}    # view name -> (the variable, its layout)
        self.tap_of: dict[int, tuple[str, int]] = {}        # id(layer) -> (tap kind, weighted index)
        seen, last = set(), -1
        for layer in self.leaves:
            kernel, bias = getattr(layer, "kernel", None), getattr(layer, "bias", None)
            kind = ("dense" if isinstance(layer, keras.layers.Dense) else
                    "conv" if "Conv" in type(layer).__name__ else None)
            if kind is not None and kernel is not None and bias is not None:
                last += 1
                info = LayerInfo(kind, last, layer.name, f"{kind}{last}.W", f"{kind}{last}.b")
                self.layouts[info.weight] = (kernel, kind)
                self.layouts[info.bias] = (bias, "bias")
                seen |= {id(kernel), id(bias)}
                self.layers.append(info)
                self.tap_of[id(layer)] = ("pre", last)
            elif isinstance(layer, (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU)) and last >= 0:
                self.layers.append(LayerInfo("activation", last, layer.name))
                self.tap_of[id(layer)] = ("act", last)
            elif layer.trainable_variables:
                self.layers.append(LayerInfo(type(layer).__name__, -1, layer.name))
        for v in self.model.trainable_variables:
            if id(v) not in seen:
                self.layouts[v.path.replace("/", ".")] = (v, "other")
        # the output: a softmax (as the layer's activation or a layer of its own) is read as its logits
        out = self.leaves[-1]
        self.softmax_layer = out if (getattr(out, "activation", None) is SOFTMAX or isinstance(out, keras.layers.Softmax)
                                     or (isinstance(out, keras.layers.Activation) and out.activation is SOFTMAX)) else None

    def _loss_fn(self) -> None:
        """Keras's compiled loss, unreduced: its function and arguments (``from_logits``)."""
        loss = self.model.loss
        self.loss_obj = loss
        if isinstance(loss, (list, tuple, dict)):
            self.skipped.append(("the per-sample loss", f"the model has {len(loss)} losses for {len(loss)} outputs; "
                                 "the probes read one"))
            self.fn, self.fn_kwargs, self.loss_name = None, {}, "multiple"
            self.classification = self.onehot = self.from_logits = False
            self.clip = 0.0
            return
        fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        self.fn, self.fn_kwargs = getattr(fn, "fn", fn), dict(getattr(fn, "_fn_kwargs", {}))
        name = getattr(self.fn, "__name__", "")
        self.loss_name = name
        self.classification = "categorical" in name
        self.onehot = name == "categorical_crossentropy"
        self.from_logits = bool(self.fn_kwargs.get("from_logits", False))
        self.clip = float(keras.config.epsilon()) if self.classification and not self.from_logits else 0.0
        if self.classification and not self.from_logits and self.softmax_layer is None:
            self.clip = float(keras.config.epsilon())
            self.skipped.append((self.leaves[-1].name, "the output is not a softmax; logits read as its output"))

    # -- layouts

    @staticmethod
    def to_view(t: torch.Tensor, layout: str) -> torch.Tensor:
        if layout in ("dense", "conv"):
            return t.reshape(-1, t.shape[-1]).unsqueeze(0)   # Keras kernels are (..., fan_in, fan_out)
        return t.unsqueeze(0) if t.dim() == 2 else t.reshape(1, 1, -1)

    def value(self, v) -> torch.Tensor:
        """A Keras variable's current value as a torch tensor (here: its own storage; other backends copy)."""
        return v.value.detach()

    def params(self) -> dict[str, torch.Tensor]:
        return {k: self.to_view(self.value(v), lay) for k, (v, lay) in self.layouts.items()}

    def grads(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, (v, lay) in self.layouts.items():
            g = v.value.grad
            out[k] = self.to_view(g if g is not None else torch.zeros_like(v.value), lay)
        return out

    # -- the model on given parameters, with taps

    def forward(self, params, x, taps=None) -> torch.Tensor:
        values = {id(v): params[k].reshape(v.value.shape) for k, (v, _) in self.layouts.items()}
        return self._call(values, x, taps)

    def _call(self, values: dict, x, taps=None):
        """The model on ``values`` (id(variable) -> a tensor of Keras's backend) with taps: its
        logits (the output's pre-softmax), (samples, classes). Backend-neutral: torch here, a
        TensorFlow or JAX array in ``_keras_backends``."""
        trainable = [values.get(id(v), v.value) for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        seen: dict = {} if taps is None else taps
        restore = self._tap(seen)
        try:
            # training=False where the model's call takes it (a subclassed call(self, x) does not)
            kw = {"training": False} if getattr(self.model, "_call_has_training_arg", True) else {}
            out, _ = self.model.stateless_call(trainable, non_trainable, x, **kw)
        finally:
            restore()
        if not keras.ops.is_tensor(out):
            raise ValueError("scalelab.keras.Diagnose: one output tensor is supported; this model returns "
                             f"{type(out).__name__}")
        out = seen.pop("logits", out) if self.logits_layer is not None else out
        return keras.ops.reshape(out, (-1, out.shape[-1]))

    def _tap(self, taps: dict):
        """Wrap each layer's ``call`` (and fused activation) for one pass; returns the undo."""
        undo = []
        channels_first = keras.config.image_data_format() == "channels_first"

        def put(name, t, conv):
            f = flat_tap(t, channels_first and conv)
            if f is None:
                return False
            taps[name] = f
            return True

        for layer in self.leaves:
            kind, i = self.tap_of.get(id(layer), (None, -1))
            is_out = layer is self.logits_layer
            conv = self.layers and any(li.kind == "conv" and li.index == i for li in self.layers)
            call = layer.call

            def wrapped(*args, _call=call, _layer=layer, _kind=kind, _i=i, _out=is_out, _conv=conv, **kwargs):
                if _kind == "pre" and args:
                    put(f"in{_i}", args[0], _conv)
                if _out and not hasattr(_layer, "kernel") and args:   # a Softmax layer: its input is the logits
                    taps["logits"] = args[0]
                y = _call(*args, **kwargs)
                if _kind == "act" and not put(f"act{_i}", y, _conv):
                    self._skip(_layer.name, "its output is not one tensor; no activation statistics")
                return y

            object.__setattr__(layer, "call", wrapped)
            undo.append(lambda _layer=layer: object.__delattr__(_layer, "call"))
            act = getattr(layer, "activation", None)
            if kind == "pre" and act is not None:
                # a softmax output's activation is not tapped (the logits are); a sigmoid output's is, as before
                keep = (not is_out or layer is not self.softmax_layer) and act is not LINEAR

                def act_tap(z, _act=act, _i=i, _out=is_out, _conv=conv, _keep=keep):
                    put(f"pre{_i}", z, _conv)
                    if _out:
                        taps["logits"] = z
                    a = _act(z)
                    if _keep:
                        put(f"act{_i}", a, _conv)
                    return a
                object.__setattr__(layer, "activation", act_tap)
                undo.append(lambda _layer=layer, _act=act: object.__setattr__(_layer, "activation", _act))

        def restore():
            for u in reversed(undo):
                u()
        return restore

    def _skip(self, name: str, why: str) -> None:
        if (name, why) not in self.skipped:
            self.skipped.append((name, why))

    def loss_per_sample(self, out, y) -> torch.Tensor:
        """Keras's own loss function, unreduced, on Keras's own softmax of the logits; targets
        and predictions brought to one rank as Keras's loss wrapper brings them ((n,) against (n, 1))."""
        if self.fn is None:
            raise ValueError("no single loss to differentiate")
        from keras.src.losses.loss import squeeze_or_expand_to_same_rank

        pred = self.model_output(out)
        # keras.ops: the same code on every backend (torch tensors here, TensorFlow or JAX arrays in _keras_backends)
        target = keras.ops.one_hot(y, out.shape[-1], dtype=out.dtype) if self.onehot else y
        target, pred = squeeze_or_expand_to_same_rank(target, pred)
        per = self.fn(target, pred, **self.fn_kwargs)
        return keras.ops.mean(keras.ops.reshape(per, (out.shape[0], -1)), 1) if len(per.shape) > 1 else per

    def model_output(self, out) -> torch.Tensor:
        """What the model returns (its softmax or sigmoid, where the view reads the logits)."""
        if self.softmax_layer is not None:
            return SOFTMAX(out)
        return SIGMOID(out) if self.sigmoid_layer is not None else out

    # -- the model as the user wrote it (checks, one-run records, `scalelab show`)

    def describe(self, x=None) -> ModelDesc:
        return describe_keras(self.model, self.leaves)

    def _kernels(self) -> list:
        return [v for v, lay in self.layouts.values() if lay in ("dense", "conv")]

    def weight_rms(self) -> float | None:
        rms = [float(self.value(v).float().pow(2).mean().sqrt()) for v in self._kernels()]
        rms = [r for r in rms if r > 0]
        return float(np.median(rms)) if rms else None

    def weight_spreads(self) -> list[tuple[str, float]]:
        return [(li.name, float(self.value(self.layouts[li.weight][0]).float().std()))
                for li in self.layers if li.weighted]

    def grad_rms(self) -> dict[str, float]:
        out = {}
        kernels = [k for k, (_, lay) in self.layouts.items() if lay in ("dense", "conv")]
        for i, k in enumerate(kernels):
            g = self.kernel_grad(k)
            if g is not None:
                out[f"layer{i}.grad_rms"] = float(g.detach().float().pow(2).mean().sqrt())
        return out

    def kernel_grad(self, name: str) -> torch.Tensor | None:
        """The gradient Keras left on a variable (None before its first backward pass)."""
        return self.layouts[name][0].value.grad

    def unit_layers(self) -> list[tuple[int, str, str]]:
        """(index, name, activation) of each hidden weighted layer: its fused activation, or
        the activation layer right after it."""
        by_name, out = {layer.name: layer for layer in self.leaves}, []
        for li in [li for li in self.layers if li.weighted][:-1]:
            act = activation_name(getattr(by_name[li.name], "activation", None))
            follow = next((x for x in self.layers if x.kind == "activation" and x.index == li.index), None)
            if act in ("linear", None) and follow is not None:
                act = activation_name(getattr(by_name[follow.name], "activation", None)) or "relu"
            out.append((li.index, li.name, act or "linear"))
        return out

    def loop_checks(self, d: ModelDesc) -> list:
        from ._checks_loop import check_frozen

        return check_frozen(d, n_trainable=len(self.model.trainable_variables))

    # -- Keras's optimizer

    @property
    def opt(self):
        return self.model.optimizer

    @property
    def optimizer_family(self) -> str:
        if isinstance(self.opt, (keras.optimizers.Adam, keras.optimizers.AdamW)):
            return "adam"
        return "momentum" if float(getattr(self.opt, "momentum", 0.0) or 0.0) else "sgd"

    @property
    def optimizer_step(self) -> int:
        return int(self.value(self.opt.iterations))

    def optimizer_state(self, name: str) -> dict[str, torch.Tensor]:
        slots = {"m": "_momentums", "v": "_velocities", "buf": "momentums"}.get(name)
        store = getattr(self.opt, slots, None) if slots else None
        if not store:
            raise KeyError(f"the Keras {type(self.opt).__name__} optimizer has no state {name!r}")
        return {k: self.to_view(self.value(store[self.opt._get_variable_index(v)]), lay)
                for k, (v, lay) in self.layouts.items()}

    def hyperparameter(self, name: str) -> dict[str, torch.Tensor]:
        o = self.opt
        values = {"lr": lambda: float(np.asarray(keras.ops.convert_to_numpy(o.learning_rate))),
                  "eps": lambda: float(getattr(o, "epsilon", 0.0)), "b1": lambda: float(getattr(o, "beta_1", 0.0)),
                  "b2": lambda: float(getattr(o, "beta_2", 0.0)), "wd": lambda: float(o.weight_decay or 0.0),
                  "mom": lambda: float(getattr(o, "momentum", 0.0) or 0.0), "keras": lambda: 1.0}
        if name not in values:
            raise KeyError(f"no hyperparameter {name!r}; known: {', '.join(values)}")
        v = values[name]()
        return {k: torch.full((1, 1, 1), v, dtype=self.dtype, device=self.device) for k in self.layouts}
