"""The labelled gallery: planted training failures and healthy-but-unusual controls.

Each case is a small study with two arms: ``reference`` (a set-up that trains) and the
``planted`` failure (or, for a control, an unusual set-up that trains fine). A broken
case names the cause id ``explain`` must rank first at the planted arm and the ids it must
not blame there (as a cause); a control names the ids it must not blame and gets no cause
at all. The rules' thresholds come from the principles written in their modules; this
table only checks them (nothing here is tuned to make a case pass). Cases are small:
scikit-learn sets, a few hundred steps, three seeds (the reference's seed range).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIGITS = {"dataset": "digits"}
STD = {"transform": "standardize"}


@dataclass(frozen=True)
class Case:
    name: str
    mechanism: str                    # what was planted, in words
    base: dict                        # spec sections shared by both arms
    reference: dict                   # dotted-key overrides of the reference arm
    planted: dict                     # ... of the planted (or control) arm
    expect: str | None                # the cause id ranked first at the planted arm (None: a control)
    ruled_out: tuple[str, ...] = ()   # ids that must not be a cause at the planted arm
    probes: str = "standard"
    extra: dict = field(default_factory=dict)   # more top-level spec keys (profile, ...)

    def spec(self) -> dict:
        return {"name": f"gallery-{self.name}", "seeds": 3, **self.extra, **self.base,
                "probes": {"preset": self.probes, **self.base.get("probes", {})},
                "arms": {"reference": self.reference, "planted": self.planted}}


CASES = [
    # raw pixel-like inputs (digits × 16: 0–256) under Keras's clipped softmax cross-entropy (seeds 000/002)
    Case("raw-inputs-clipped-softmax", "raw inputs, softmax output with Keras's probability clip",
         dict(data=DIGITS, input={"transform": "scale"}, model={"hidden": [32]}, train={"epochs": 4}),
         {"input.scale": "1/16"}, {"input.scale": 16.0}, "clipped-zero-gradient",
         ("dead-relu", "loss-divergence", "large-logits", "class-collapse")),
    # the same inputs with a cross-entropy on logits (Keras on TensorFlow, PyTorch)
    Case("raw-inputs-from-logits", "raw inputs, cross-entropy on logits",
         dict(data=DIGITS, input={"transform": "scale"}, model={"hidden": [32]}, train={"epochs": 4}),
         {"input.scale": "1/16"}, {"input.scale": 16.0}, "large-logits",
         ("zero-gradient", "clipped-zero-gradient", "loss-divergence", "dead-relu"), extra={"profile": "keras-logits"}),
    Case("sgd-lr-too-large", "plain SGD with a learning rate 40× too large",
         dict(data=DIGITS, input=STD, model={"hidden": [32]}, optim={"name": "sgd", "lr": 0.05}, train={"epochs": 4}),
         {}, {"optim.lr": 2.0}, "loss-divergence", ("zero-gradient", "clipped-zero-gradient", "dead-relu")),
    Case("adam-lr-too-large", "Adam with a learning rate 300× too large",
         dict(data=DIGITS, input=STD, model={"hidden": [32]}, train={"epochs": 4}),
         {}, {"optim.lr": 0.3}, "loss-divergence", ("dead-relu", "class-collapse", "clipped-zero-gradient")),
    Case("tanh-saturated", "tanh hidden layer with its init scaled ×8",
         dict(data=DIGITS, input=STD, model={"hidden": [32], "activation": "tanh"}, train={"epochs": 4}),
         {}, {"model.init_scale": [8.0, 1.0]}, "saturated-units",
         ("vanishing-error-signal", "zero-gradient", "clipped-zero-gradient", "dead-relu")),
    Case("deep-sigmoid", "8 sigmoid layers under SGD",
         dict(data=DIGITS, input=STD, model={"activation": "sigmoid"}, optim={"name": "sgd", "lr": 0.1},
              train={"steps": 180}),
         {"model.hidden": [32]}, {"model.hidden": [32] * 8}, "vanishing-error-signal",
         ("saturated-units", "small-first-layer-step", "class-collapse", "dead-relu")),
    Case("raw-regression-targets", "diabetes targets (25–346) left raw",
         dict(data={"dataset": "diabetes"}, input=STD, model={"hidden": [32]}, loss={"name": "mse"}, train={"epochs": 8}),
         {"target.transform": "standardize"}, {"target.transform": "none"}, "unscaled-targets",
         ("predicts-the-mean", "loss-divergence")),
    Case("tiny-regression-targets", "targets scaled to ~1e-3 (the heat-map thread's ≤ 1e-2)",
         dict(data={"dataset": "sin-plus-y", "n_samples": 600}, model={"hidden": [32]}, loss={"name": "mse"},
              train={"epochs": 6}),
         {"target.transform": "standardize"}, {"target.transform": "scale", "target.scale": 0.001}, "unscaled-targets",
         ("predicts-the-mean",)),
    Case("ill-conditioned-features", "breast-cancer features rescaled as a whole (std ratio 2.6e5) under SGD",
         dict(data={"dataset": "breast_cancer"}, input={"scale": 0.001}, model={"hidden": [32]},
              optim={"name": "sgd", "lr": 0.05}, train={"epochs": 8}, probes={"hessian_iters": 10}),
         {"input.transform": "standardize"}, {"input.transform": "scale"}, "ill-conditioning",
         ("clipped-zero-gradient", "dead-relu", "small-first-layer-step"), probes="full"),
    Case("binary-collapse", "binary task with an L2 penalty so strong the weights vanish",
         dict(data={"dataset": "breast_cancer"}, input=STD, model={"hidden": [32]}, optim={"name": "sgd", "lr": 0.01},
              train={"epochs": 8}),
         {}, {"optim.l2": 2.0}, "class-collapse", ("dead-relu", "loss-divergence")),
    Case("dead-relu-bias", "hidden ReLU biases initialised to -6",
         dict(data=DIGITS, input=STD, model={"hidden": [32]}, train={"epochs": 4}, probes={"rows": "first:400"}),
         {}, {"model.bias_init": [-6.0, 0.0]}, "dead-relu", ("small-first-layer-step", "vanishing-error-signal")),
    Case("tiny-inputs-sgd", "inputs 100× smaller than the reference's under SGD (weight-vs-feature-scale)",
         dict(data=DIGITS, input={"transform": "scale"}, model={"hidden": [32]}, optim={"name": "sgd", "lr": 0.05},
              train={"epochs": 4}),
         {"input.scale": "1/16"}, {"input.scale": "1/1600"}, "small-first-layer-step",
         ("dead-relu", "class-collapse", "ill-conditioning")),
    Case("nan-divergence", "regression under SGD with lr 10: the loss overflows",
         dict(data={"dataset": "diabetes"}, input=STD, target=STD, loss={"name": "mse"}, model={"hidden": [32]},
              optim={"name": "sgd", "lr": 0.01}, train={"epochs": 4}),
         {}, {"optim.lr": 10.0}, "diverged"),
    # -- healthy but unusual: no cause may fire at the planted arm
    Case("control-tanh", "tanh units instead of ReLU",
         dict(data=DIGITS, input=STD, model={"hidden": [32]}, train={"epochs": 4}),
         {}, {"model.activation": "tanh"}, None, ("saturated-units", "vanishing-error-signal")),
    Case("control-sgd-high-lr", "SGD at lr 0.5, ten times the reference's, which still trains",
         dict(data=DIGITS, input=STD, model={"hidden": [32]}, optim={"name": "sgd", "lr": 0.05}, train={"epochs": 4}),
         {}, {"optim.lr": 0.5}, None, ("loss-divergence", "sharp-curvature", "zero-gradient")),
    Case("control-frozen-head", "the output layer's lr ×1e-3 (updates 1000× smaller than the hidden layer's)",
         dict(data=DIGITS, input=STD, model={"hidden": [64]}, train={"epochs": 4}),
         {}, {"optim.lr_mult": [1.0, 1e-3]}, None, ("layer-imbalance", "small-first-layer-step")),
    Case("control-confident", "long Adam training: most samples learned with an exactly zero gradient",
         dict(data={"dataset": "breast_cancer", "holdout": False}, input=STD, model={"hidden": [32]},
              train={"epochs": 30}),
         {}, {"optim.lr": 0.03}, None, ("zero-gradient", "clipped-zero-gradient")),
]
