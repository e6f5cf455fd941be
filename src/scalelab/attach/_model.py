"""What the user's run is, in their own terms: the model's layers (name, kind, units,
activation), the output activation, the loss and its ``from_logits``, the optimizer with
its hyperparameters, batch size and epochs.

Both adapters fill one :class:`ModelDesc` (Keras on any backend, PyTorch), so the checks
before the first step (:mod:`._checks`), the fixes' wording (:mod:`._fixes`) and
``scalelab show`` read one plain description. It is stored with the run (the trial's
``env["model"]``), so what was trained is what the store says, not scalelab's defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# canonical loss names: what the loss expects of the output and of the targets
PROBABILITY_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy")
CLASS_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "nll")
REGRESSION_LOSSES = ("mse", "mae", "huber")
# what each output activation can produce: (low, high)
RANGES = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, float("inf")),
          "softplus": (0.0, float("inf")), "exponential": (0.0, float("inf")), "relu6": (0.0, 6.0),
          "hard_sigmoid": (0.0, 1.0)}


@dataclass(frozen=True)
class LayerDesc:
    name: str                    # the user's own name (Keras layer name, PyTorch module path)
    kind: str                    # dense, conv, rnn, embedding, activation, norm, dropout, flatten, other
    units: int | None = None     # output units (dense), filters (conv), hidden size (rnn)
    activation: str | None = None  # its own (fused) activation; "linear": none; None: not a weighted layer
    cls: str = ""                # the framework's class name (Dense, nn.Linear, ...)


@dataclass
class ModelDesc:
    framework: str                            # "keras" or "pytorch"
    layers: list[LayerDesc] = field(default_factory=list)
    output_units: int | None = None
    output_activation: str = "unknown"        # softmax, sigmoid, log_softmax, linear, relu, tanh, ..., unknown
    output_layer: str = ""                    # the name of the layer whose output is the model's
    loss: str = "unknown"                     # canonical (above), or "custom:<name>"
    loss_call: str = ""                       # the loss as the user wrote it: "binary_crossentropy", "nn.MSELoss()"
    from_logits: bool = False
    optimizer: str = ""                       # "Adam", "SGD"
    hyper: dict = field(default_factory=dict)  # learning_rate, momentum, ...
    batch_size: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    linear_pairs: list[tuple[str, str]] = field(default_factory=list)  # weighted layers with nothing nonlinear between
    unregistered: list[str] = field(default_factory=list)  # layers with weights that ran but are not the model's (a plain list)

    @property
    def lr(self) -> float | None:
        lr = self.hyper.get("learning_rate")
        return float(lr) if lr is not None else None

    @property
    def hidden(self) -> list[LayerDesc]:
        weighted = [layer for layer in self.layers if layer.activation is not None]
        return weighted[:-1]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["linear_pairs"] = [list(p) for p in self.linear_pairs]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelDesc":
        d = dict(d)
        d["layers"] = [LayerDesc(**layer) for layer in d.get("layers", [])]
        d["linear_pairs"] = [tuple(p) for p in d.get("linear_pairs", [])]
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def lines(self) -> list[str]:
        """The description as ``scalelab show`` prints it."""
        out = [f"model ({self.framework}):"]
        for layer in self.layers:
            units = f" {layer.units}" if layer.units is not None else ""
            act = f", activation={layer.activation}" if layer.activation not in (None, "linear") else ""
            out.append(f"  {layer.name}: {layer.cls or layer.kind}{units}{act}")
        out.append(f"  output: {self.output_units} unit(s), {self.output_activation}")
        logits = " (from_logits=True)" if self.from_logits and self.framework == "keras" else ""
        out.append(f"loss: {self.loss_call or self.loss}{logits}")
        hyper = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.hyper.items())
        out.append(f"optimizer: {self.optimizer}({hyper})")
        out.append(f"batch size: {self.batch_size if self.batch_size else '?'}, epochs: "
                   f"{self.epochs if self.epochs else '?'}")
        return out
