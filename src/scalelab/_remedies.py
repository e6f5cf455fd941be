"""Each cause's remedy, declared as a change that can be run (issue 32: verify the fix).

For a study scalelab trains (a built-in or spec study) a remedy is a *spec change*: dotted
keys over the cause's level (``{"input.scale": "1/255"}``, ``{"optim.lr": 1e-4}``), run next
to the level itself by the verification study kind (studies/_verify.py). For a watched Keras or
PyTorch run it is a *change to a copy* of the user's model, compile arguments or data, named
by ``change["what"]`` and applied by attach/_verify_keras.py and attach/_verify_torch.py; its
words are the user's own framework's (attach/_fixes.py, quoted in the finding's ``fix``).

One table, keyed by finding id, rather than a declaration in each rule module: several rule
modules are the concern of other work, and a test checks that every cause id of every
registered rule is here, with a remedy or the reason it has none (``NO_REMEDY``).

Torch-free and numpy-free: ``explain`` reads remedies without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# the signal a finding fires on, as the verification measures it again on the remedy arm:
# (probe name, quantity) of the stored probe series (spec studies)
ZERO_GRADIENT_WRONG = ("zero_grad", "share_wrong")   # probes/_records.ZeroGradient
# findings measured by it: the input scale too, whose consequence (where the loss clips) is the clip
_CLIP_SIGNAL = ("clipped-zero-gradient", "zero-gradient", "input-scale")


@dataclass(frozen=True)
class Remedy:
    finding: str                       # the finding id it answers
    words: str                         # the change, in the words the user reads
    spec: dict = field(default_factory=dict)     # spec studies: dotted-key changes over the cause's level
    change: dict = field(default_factory=dict)   # watched runs: {"what": ..., parameters}
    signal: tuple | None = None        # (probe, quantity) whose largest mean over steps is the finding's signal

    def as_dict(self) -> dict:
        return dict(finding=self.finding, words=self.words, spec=dict(self.spec), change=dict(self.change),
                    signal=list(self.signal) if self.signal else None)


# Causes with no change that can be run and measured, and why (the verification says so).
NO_REMEDY = {
    "one-class-labels": "the data has one class: no change to the model or the training can fix it",
    "fractional-labels": "the labels are continuous values: the task itself must be restated",
    "label-encoding-mismatch": "not yet mechanised (change the loss or encode the labels)",
    "target-shape-broadcast": "a bug in the user's loop: verified by rerunning their corrected loop",
    "missing-zero-grad": "a bug in the user's loop: verified by rerunning their corrected loop",
    "optimizer-params": "a bug in the user's loop: verified by rerunning their corrected loop",
    "unregistered-params": "a bug in the user's model class: verified by rerunning their corrected model",
    "dense-update-over-unused-rows": "a sparse optimizer changes the update rule, not a single spec key",
    "layer-imbalance": "no single change: per-layer learning rates (optim.lr_mult) are the study to run",
    "sharp-curvature": "a lower learning rate; not yet mechanised",
    "flat-loss-surface": "not yet mechanised",
    "batchnorm-train-eval-gap": "not yet mechanised (bn_momentum)",
    "accuracy-at-majority": "class weights change the objective: judged by per-class recall, not yet mechanised",
    "loss-at-chance": "a symptom with several causes: the remedy is the cause's",
    "predicts-the-mean": "a symptom with several causes: the remedy is the cause's",
    "class-collapse": "a symptom with several causes: the remedy is the cause's",
    "small-first-layer-step": "not yet mechanised (optim.lr_mult on the first layer)",
    "exploding-gradients": "not yet mechanised (gradient clipping)",
}

_UNIT_INPUTS = ("clipped-zero-gradient", "zero-gradient", "large-logits", "input-scale", "ill-conditioning",
                "saturated-units", "saturated-tanh-sigmoid", "saturated-at-start")
_LOWER_LR = ("loss-divergence", "diverged", "diverged-at-lr", "dead-relu", "dead-units")


def _unit_inputs_spec(spec) -> tuple[dict, str] | None:
    """Inputs brought to unit size: pixels (Fashion-MNIST) divided by 255, anything else
    standardized with the training split's statistics; None when they already are."""
    t = spec.input.transform
    if t == "scale" and spec.data.dataset == "fashion-mnist" and abs(spec.input.scale * 255 - 1) > 1e-9:
        return {"input.scale": "1/255"}, "input.scale = 1/255 (pixels to 0–1)"
    if t in ("none", "scale", "minmax") and not (t == "scale" and abs(spec.input.scale * 255 - 1) <= 1e-9):
        return {"input.transform": "standardize"}, 'input.transform = "standardize" (unit-size features)'
    return None


def for_spec(finding_id: str, spec) -> Remedy | None:
    """The remedy of a cause found at a level whose resolved spec is ``spec`` (a TrialSpec),
    or None when the cause has none to run there (see :data:`NO_REMEDY`)."""
    fid = finding_id
    signal = ZERO_GRADIENT_WRONG if fid in _CLIP_SIGNAL else None
    if fid in _UNIT_INPUTS:
        got = _unit_inputs_spec(spec)
        if got is not None:
            return Remedy(fid, got[1], spec=got[0], signal=signal)
        if fid in ("saturated-units", "saturated-tanh-sigmoid"):
            return Remedy(fid, 'model.activation = "relu"', spec={"model.activation": "relu"})
        return None
    if fid in _LOWER_LR:
        lr = spec.optim.lr / 10
        return Remedy(fid, f"optim.lr = {lr:g} (a tenth)", spec={"optim.lr": lr})
    if fid in ("unscaled-targets", "target-scale", "loss-at-mean"):
        if spec.target.transform != "standardize":
            return Remedy(fid, 'target.transform = "standardize"', spec={"target.transform": "standardize"})
        return None
    if fid in ("vanishing-error-signal", "vanishing-gradients") and spec.model.activation in ("sigmoid", "tanh"):
        return Remedy(fid, 'model.activation = "relu"', spec={"model.activation": "relu"})
    if fid == "mode-averaging" and spec.loss.name in ("trajectory_mse", "grid_softmax"):
        return Remedy(fid, 'loss.name = "mdn_nll" (a mixture head: one component per mode)',
                      spec={"loss.name": "mdn_nll"})
    return None


def for_watched(finding_id: str, evidence: dict, data: dict, model: dict | None) -> Remedy | None:
    """The remedy of a cause found in a watched run, as a change to a copy: ``data`` holds
    what the verification measured of the data the callback saw (``x_max``, ``x_rms``,
    ``y_min``, ``y_max``, ``classification``), ``model`` the stored model description
    (framework, optimizer, learning rate, output activation, loss)."""
    fid, m = finding_id, model or {}
    fix = evidence.get("fix")
    signal = ZERO_GRADIENT_WRONG if fid in _CLIP_SIGNAL else None
    if fid in _UNIT_INPUTS + ("input-offset",):
        x_max, x_rms = data.get("x_max", 0.0), data.get("x_rms", 0.0)
        if fid != "input-offset" and 127.5 <= x_max <= 255.0 + 1e-6:
            return Remedy(fid, fix or "X = X / 255.0 (pixel values)", change={"what": "x_scale", "factor": 1 / 255},
                          signal=signal)
        if fid == "input-offset" or x_rms > 3.0 or x_max > 10.0:
            return Remedy(fid, fix or "X = (X - X.mean(0)) / X.std(0)", change={"what": "x_standardize"},
                          signal=signal)
        return None
    if fid in ("target-scale", "unscaled-targets", "loss-at-mean") and not data.get("classification", True):
        return Remedy(fid, fix or "y_s = (y - y.mean()) / y.std()", change={"what": "y_standardize"})
    lr = (m.get("hyper") or {}).get("learning_rate") or m.get("lr") or evidence.get("lr") or evidence.get(
        "learning_rate")
    if fid == "learning-rate" and lr:
        to = 1e-3 if evidence.get("fired") in ("lr_over_weight_rms", "total_travel") else lr / 10
        return Remedy(fid, fix or f"learning rate {to:g}", change={"what": "lr", "lr": to})
    if fid in _LOWER_LR and lr:
        return Remedy(fid, fix or f"learning rate {lr / 10:g}", change={"what": "lr", "lr": lr / 10})
    if fid == "non-finite-data":
        return Remedy(fid, fix or "X = np.nan_to_num(X)", change={"what": "nan_to_num"})
    if fid == "sorted-labels":
        return Remedy(fid, fix or "shuffle=True", change={"what": "shuffle"})
    if fid == "labels-out-of-range" and data.get("classification", True):
        if evidence.get("allowed_max") == 1:   # one output or a binary loss: the labels must be 0 and 1
            return Remedy(fid, fix or "y = (y == y.max())", change={"what": "labels_to_01"})
        return Remedy(fid, fix or "y = y - y.min()", change={"what": "labels_from_zero"})
    if fid == "frozen-model":
        return Remedy(fid, fix or "let every layer train", change={"what": "unfreeze"})
    if fid in ("symmetric-init", "dead-units-at-start"):
        return Remedy(fid, fix or "the framework's default initialization", change={"what": "default_init"})
    if fid in ("no-nonlinearity", "vanishing-gradients"):
        return Remedy(fid, fix or "relu hidden activations", change={"what": "hidden_relu"})
    if fid == "output-loss-mismatch":
        return Remedy(fid, fix or "the output and loss that match", change={"what": "output_for_loss"})
    return None

