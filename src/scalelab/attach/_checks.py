"""Checks before the first step: the model, its loss and optimizer against the data the
run sees. Plain data in (a :class:`~._model.ModelDesc`, numpy arrays), findings out, so
the Keras callback (any backend) and the PyTorch watcher share them.

Each threshold comes from a stated principle (in the comment at the check), and each
finding quotes the number that fired it and the fix in the user's framework (:mod:`._fixes`).
Role ``cause``: it will break training; ``note``: it may.
"""

from __future__ import annotations

import math

import numpy as np

from .._explain._findings import CAUSE, NOTE, Finding
from . import _fixes as fix
from ._model import CLASS_LOSSES, PROBABILITY_LOSSES, RANGES, REGRESSION_LOSSES, ModelDesc

# Default initializers (Glorot, He, PyTorch's uniform(±1/sqrt(fan_in))) keep a layer's
# pre-activations at about the size of its inputs when the inputs are of unit size. Inputs
# (or targets) whose RMS is UNIT_SCALE_FACTOR times that start the first layer (the output)
# a decade beyond where its initialization was designed to operate.
UNIT_SCALE_FACTOR = 10.0
# An offset mean μ on a feature of spread σ puts w·μ into every pre-activation against w·δ ~ w·σ
# of signal: at μ/σ ≥ 10 the signal is under a tenth of what the unit sees.
OFFSET_RATIO = 10.0
# A bounded output cannot reach a target outside its range; a few outliers are tolerable,
# a twentieth of the targets out of reach is a floor the loss cannot pass.
OUT_OF_RANGE_SHARE = 0.05
# Adam-family steps move each weight by about the learning rate: a rate as large as the
# weights' own typical size (RMS) rewrites them in one step; a rate under which the total
# travel of all steps (lr × steps) stays below a tenth of their size cannot move them.
ADAPTIVE = ("Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Lion", "Adafactor", "RAdam",
            "NAdam", "SparseAdam")
# Plain SGD: the framework's default rate is its operating point (Keras SGD: 0.01); two
# decades above it the step is no longer small against typical unit-scale weights.
SGD_DEFAULT, SGD_DECADES = 0.01, 2.0


def _f(fid: str, role: str, text: str, fix_line: str, **ev) -> Finding:
    ev = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in ev.items()}
    ev["fix"] = fix_line
    return Finding(fid, {}, ev, f"{text}; fix: {fix_line}.", role=role, at=-1.0)


def squeeze_targets(y: np.ndarray) -> np.ndarray:
    while y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    return y


def infer_output_activation(out: np.ndarray) -> str:
    """What produced the outputs, when the model does not say (a functional activation in
    ``forward``): softmax rows sum to 1 in [0, 1]; log-softmax rows are log-probabilities;
    sigmoid outputs lie strictly in (0, 1); relu outputs are ≥ 0 with exact zeros."""
    o = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
    if not o.size or not np.isfinite(o).all():
        return "unknown"
    if o.shape[1] > 1 and (o >= 0).all() and (o <= 1).all() and np.allclose(o.sum(1), 1, atol=1e-4):
        return "softmax"
    if o.shape[1] > 1 and (o <= 0).all() and np.allclose(np.exp(o).sum(1), 1, atol=1e-3):
        return "log_softmax"
    if (o > 0).all() and (o < 1).all() and o.std() > 0:
        return "sigmoid"
    if (o >= 0).all() and (o == 0).mean() >= 0.01 and (o > 0).any():
        return "relu"
    return "linear"


def label_kind(y: np.ndarray, units: int | None) -> str:
    """index (one class number per row), onehot, multilabel (several 1s per row) or values."""
    y2 = squeeze_targets(y)
    if y2.ndim == 1:
        return "index"
    if y2.ndim == 2 and y2.shape[1] > 1 and np.isin(y2, (0, 1)).all():
        return "onehot" if np.all(y2.sum(1) == 1) else "multilabel"
    return "values"


def check_output_and_loss(d: ModelDesc, y: np.ndarray | None) -> list[Finding]:
    act, units, loss = d.output_activation, d.output_units, d.loss
    out: list[Finding] = []
    kind = label_kind(y, units) if y is not None else None
    if act == "softmax" and units == 1:
        # softmax normalizes over the units: over one unit it is exp(z)/exp(z) = 1 whatever z is
        out.append(_f("output-loss-mismatch", CAUSE, f"the output layer {d.output_layer!r} is a softmax over 1 unit: it "
                      "outputs 1.0 for every input, so the loss and its gradient do not depend on the model",
                      fix.binary_output(d), fired="units", units=1, activation=act))
        return out
    logits_loss = d.from_logits or loss == "nll"
    if loss in PROBABILITY_LOSSES and d.from_logits and act in ("softmax", "sigmoid"):
        # the loss applies the softmax/sigmoid itself: applied twice, outputs stay in a narrow band
        out.append(_f("output-loss-mismatch", CAUSE, f"the output is already a {act} and {d.loss_call or loss} applies "
                      f"{'log-softmax' if act == 'softmax' else 'the sigmoid'} again: the probabilities are squashed "
                      "twice and the gradient shrinks", fix.logits_twice(d), fired="activation", activation=act,
                      from_logits=True))
    elif loss in PROBABILITY_LOSSES and d.from_logits and act in ("relu", "tanh", "log_softmax") and d.framework == "pytorch":
        out.append(_f("output-loss-mismatch", CAUSE, f"an activation ({act}) is applied to the final logits before "
                      f"{d.loss_call or loss}, which expects raw logits: it limits what the model can output",
                      fix.logits_twice(d), fired="activation", activation=act, from_logits=True))
    elif loss in ("categorical_crossentropy", "sparse_categorical_crossentropy") and not logits_loss and act != "softmax":
        # a probability loss reads the outputs as a distribution over classes: only a softmax makes one
        out.append(_f("output-loss-mismatch", CAUSE, f"{loss} expects class probabilities, but the output layer "
                      f"{d.output_layer!r} has activation {act!r}: its outputs are not a distribution over the "
                      f"{units} classes", fix.softmax_output(d) if units and units > 1 else fix.binary_output(d),
                      fired="activation", activation=act, units=units))
    elif loss == "binary_crossentropy" and not logits_loss and act not in ("sigmoid", "softmax", "unknown"):
        out.append(_f("output-loss-mismatch", CAUSE, f"binary_crossentropy expects probabilities in (0, 1), but the "
                      f"output layer {d.output_layer!r} has activation {act!r}", fix.binary_output(d),
                      fired="activation", activation=act))
    elif loss == "nll" and act not in ("log_softmax", "unknown"):
        # NLLLoss only picks -out[y]: on anything but log-probabilities it is unbounded below
        out.append(_f("output-loss-mismatch", CAUSE, f"NLLLoss expects log-probabilities, but the model's output is "
                      f"{act} (its rows are not log-softmax): the loss is unbounded below",
                      fix.nll_needs_log_probs(d), fired="activation", activation=act))
    if act == "softmax" and units and units > 1 and kind == "multilabel" and loss not in CLASS_LOSSES:
        share = float(np.mean(squeeze_targets(y).sum(1) > 1))
        out.append(_f("output-loss-mismatch", CAUSE, f"{pct(share)} of the target rows have several labels, but a "
                      f"softmax output's {units} units sum to 1: it cannot predict two labels at once",
                      fix.multilabel_output(d), fired="multilabel_rows", multilabel_rows=share))
    if loss in REGRESSION_LOSSES and act in RANGES and y is not None and kind != "onehot":
        lo, hi = RANGES[act]
        t = np.asarray(y, dtype=np.float64)
        t = t[np.isfinite(t)]
        share = float(np.mean((t < lo) | (t > hi))) if t.size else 0.0
        if share > OUT_OF_RANGE_SHARE:
            out.append(_f("output-loss-mismatch", CAUSE, f"the output layer's {act} keeps predictions in "
                          f"[{lo:g}, {hi:g}], but {pct(share)} of the targets lie outside it (they range "
                          f"{t.min():.3g} to {t.max():.3g})", fix.unbounded_output(d, lo, hi),
                          fired="targets_out_of_range", targets_out_of_range=share, low=lo, high=hi))
    return out


def pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.2g}%"


def check_labels(d: ModelDesc, y: np.ndarray) -> list[Finding]:
    """Class labels against the loss and the output: encoding, range, whole numbers, classes."""
    loss, units = d.loss, d.output_units
    if loss not in (*CLASS_LOSSES, "binary_crossentropy"):
        return []
    out: list[Finding] = []
    kind = label_kind(y, units)
    y2 = squeeze_targets(np.asarray(y))
    if y2.dtype == bool:
        y2 = y2.astype(np.int64)
    if loss == "categorical_crossentropy" and kind == "index" and units and units > 1:
        out.append(_f("label-encoding-mismatch", CAUSE, f"categorical_crossentropy expects one-hot rows of {units}, "
                      f"but y holds one class number per row", fix.sparse_vs_onehot(d, False), fired="label_shape",
                      label_shape=list(np.shape(y))))
        return out
    if loss in ("sparse_categorical_crossentropy", "nll") and kind == "onehot" and d.framework == "pytorch":
        out.append(_f("label-encoding-mismatch", CAUSE, "the loss expects class indices, but y holds one-hot rows",
                      fix.sparse_vs_onehot(d, True), fired="label_shape", label_shape=list(np.shape(y))))
        return out
    if kind == "index":
        vals = y2.astype(np.float64)
        vals = vals[np.isfinite(vals)]
        if not vals.size:
            return out
        if loss != "binary_crossentropy" and np.any(vals != np.round(vals)):
            # a class label is a whole number: the loss casts 0.7 to class 0 silently
            share = float(np.mean(vals != np.round(vals)))
            out.append(_f("fractional-labels", CAUSE, f"{pct(share)} of the class labels are not whole numbers (e.g. "
                          f"{vals[vals != np.round(vals)][0]:.3g}): they are cast to class numbers, so the labels the "
                          "model learns are not the ones meant", fix.fractional_labels(d), fired="fractional_share",
                          fractional_share=share))
            return out
        lo, hi = float(vals.min()), float(vals.max())
        top = 1.0 if (loss == "binary_crossentropy" or units == 1) else float((units or 0) - 1)
        if lo < 0 or hi > top:
            out.append(_f("labels-out-of-range", CAUSE, f"the labels range {lo:g} to {hi:g}, but the output can only "
                          f"stand for {'0 and 1' if top == 1 else f'classes 0 to {top:g}'}", fix.labels_range(d, lo, hi),
                          fired="label_max" if hi > top else "label_min", label_min=lo, label_max=hi, allowed_max=top))
            return out
        classes, counts = np.unique(vals if loss != "binary_crossentropy" else (vals > 0.5), return_counts=True)
        out += _class_counts(d, classes, counts)
    elif kind == "onehot":
        counts = squeeze_targets(np.asarray(y)).sum(0)
        classes = np.flatnonzero(counts)
        out += _class_counts(d, classes, counts[classes])
    return out


def _class_counts(d: ModelDesc, classes, counts) -> list[Finding]:
    n = int(np.sum(counts))
    if len(classes) == 1:
        return [_f("one-class-labels", CAUSE, f"all {n} training labels seen are class {classes[0]:g}: there is "
                   "nothing to tell apart", fix.one_class(d), fired="n_classes", n_classes=1, n_labels=n)]
    C = max(len(classes), d.output_units if d.output_units and d.output_units > 1 else 2)
    share = float(np.max(counts) / n)
    # a model that predicts the majority class scores `share`; the imbalance is stated when that
    # share is closer to one class (1) than to a balanced split (1/C)
    if share > (1 + 1 / C) / 2:
        return [_f("class-imbalance", NOTE, f"{pct(share)} of the labels are class "
                   f"{classes[int(np.argmax(counts))]:g}: predicting it always scores {pct(share)} accuracy, so "
                   "accuracy near that says nothing was learned",
                   fix.imbalance(d),
                   fired="majority_share", majority_share=share, n_classes=C)]
    return []


def check_arrays(d: ModelDesc, x: np.ndarray | None, y: np.ndarray | None, regression: bool) -> list[Finding]:
    """Inputs and (regression) targets in absolute terms."""
    out: list[Finding] = []
    for where, a in (("inputs", x), ("targets", y)):
        if a is None or not np.issubdtype(np.asarray(a).dtype, np.number):
            continue
        a = np.asarray(a, dtype=np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            out.append(_f("non-finite-data", CAUSE, f"{pct(float(bad.mean()))} of the {where} are NaN or inf: one "
                          "in a batch makes the loss and every weight NaN", fix.non_finite(d, where),
                          fired="non_finite_share", non_finite_share=float(bad.mean()), array=where))
    if x is not None and np.issubdtype(np.asarray(x).dtype, np.number) and not getattr(d, "token_inputs", False):
        a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        a = np.where(np.isfinite(a), a, 0.0)
        rms = float(np.sqrt(np.mean(a ** 2))) if a.size else 0.0
        if rms > UNIT_SCALE_FACTOR:
            out.append(_f("input-scale", CAUSE, f"the inputs have RMS {rms:.3g} (max {a.max():.3g}), {rms:.0f}x the unit "
                          f"scale the layers' initialization assumes: the first layer starts with pre-activations "
                          f"{rms:.0f}x too large", fix.input_scale(d, rms, float(a.max())), fired="input_rms",
                          input_rms=rms, input_max=float(a.max()), threshold=UNIT_SCALE_FACTOR))
        elif a.shape[0] > 1 and a.shape[1] >= 1:
            mean, std = a.mean(0), a.std(0)
            live = std > 0
            if live.any():
                ratio = float(np.median(np.abs(mean[live]) / std[live]))
                if ratio >= OFFSET_RATIO:
                    out.append(_f("input-offset", CAUSE, f"the input features sit far from zero: the median feature "
                                  f"has |mean| = {ratio:.3g}x its spread, so a unit sees mostly the constant offset",
                                  fix.input_offset(d), fired="offset_ratio", offset_ratio=ratio, threshold=OFFSET_RATIO))
            const = float(np.mean(~live))
            if 0 < const < 1 and a.shape[1] > 1 and const >= 0.5:
                out.append(_f("constant-features", NOTE, f"{pct(const)} of the input features are constant in the rows "
                              "seen: they carry nothing to learn from", "drop them or check how X was built",
                              fired="constant_share", constant_share=const))
    if regression and y is not None and np.issubdtype(np.asarray(y).dtype, np.number):
        t = np.asarray(y, dtype=np.float64)
        t = t[np.isfinite(t)]
        rms = float(np.sqrt(np.mean(t ** 2))) if t.size else 0.0
        if rms > UNIT_SCALE_FACTOR and d.output_activation in ("linear", "unknown", "relu"):
            out.append(_f("target-scale", CAUSE, f"the regression targets have RMS {rms:.3g} (mean {t.mean():.3g}, std "
                          f"{t.std():.3g}), {rms:.0f}x the unit-size outputs the output layer starts with: the "
                          "first steps are spent (or blown up) closing that gap", fix.target_scale(d),
                          fired="target_rms", target_rms=rms, target_mean=float(t.mean()), target_std=float(t.std()),
                          threshold=UNIT_SCALE_FACTOR))
    return out


def check_linear_stack(d: ModelDesc) -> list[Finding]:
    if not d.linear_pairs:
        return []
    a, b = d.linear_pairs[0]
    pairs = "; ".join(f"{p} -> {q}" for p, q in d.linear_pairs)
    # a composition of affine maps is affine: the hidden layers add weights, not capacity
    return [_f("no-nonlinearity", CAUSE, f"nothing nonlinear between {pairs}: stacked linear layers compute one "
               "linear function, so the hidden layers add no capacity", fix.add_nonlinearity(d, a),
               fired="linear_pairs", linear_pairs=[list(p) for p in d.linear_pairs])]


def check_learning_rate(d: ModelDesc, weight_rms: float | None, total_steps: int | None) -> list[Finding]:
    lr = d.lr
    if lr is None or not math.isfinite(lr) or lr <= 0:
        return []
    out = []
    if d.optimizer in ADAPTIVE and weight_rms and weight_rms > 0:
        ratio = lr / weight_rms
        if ratio >= 1.0:
            out.append(_f("learning-rate", CAUSE, f"{d.optimizer} moves every weight by about its learning rate each "
                          f"step: lr={lr:g} is {ratio:.2g}x the weights' typical size (RMS {weight_rms:.3g}), so one step "
                          "rewrites them", fix.learning_rate(d, 1e-3), fired="lr_over_weight_rms",
                          lr_over_weight_rms=ratio, lr=lr, weight_rms=weight_rms))
        elif total_steps and lr * total_steps < 0.1 * weight_rms:
            travel = lr * total_steps
            out.append(_f("learning-rate", CAUSE, f"{d.optimizer} moves each weight by at most about lr={lr:g} per "
                          f"step: over the run's {total_steps} steps that is {travel:.2g}, under a tenth of the "
                          f"weights' typical size (RMS {weight_rms:.3g}), so they barely move",
                          fix.learning_rate(d, 1e-3), fired="total_travel", total_travel=travel, lr=lr,
                          weight_rms=weight_rms, steps=total_steps))
    elif d.optimizer == "SGD" and lr >= SGD_DEFAULT * 10 ** SGD_DECADES:
        out.append(_f("learning-rate", NOTE, f"SGD with lr={lr:g}, {lr / SGD_DEFAULT:.0f}x the usual 0.01: watch for "
                      "divergence", fix.learning_rate(d, 0.01), fired="lr", lr=lr))
    return out


def check_init(d: ModelDesc, spreads: list[tuple[str, float]] | None) -> list[Finding]:
    """``spreads``: (layer name, std of its kernel) of each weighted layer, in order. Units of a
    hidden layer whose kernel entries are all equal compute the same function and receive the
    same gradient: they stay copies of one unit however long training runs (the output layer
    may start at zero: nothing after it needs its units to differ)."""
    hidden = [(n, s) for n, s in (spreads or [])[:-1] if s == 0]
    if not hidden:
        return []
    name = hidden[0][0]
    return [_f("symmetric-init", CAUSE, f"every weight of the hidden layer {name!r} starts equal (kernel std 0): its "
               "units compute the same function, get the same gradient and stay identical",
               ('kernel_initializer="glorot_uniform" (the default) instead of zeros or a constant' if d.framework == "keras"
                else "leave PyTorch's default init (remove nn.init.zeros_/constant_ on the weights)"),
               fired="kernel_std", kernel_std=0.0, layer=name, layers=[n for n, _ in hidden])]


# Half a layer's units unable to pass a gradient before the first step is half its width lost
# from the start (the same share the one-run rules use; see scalelab._explain._dead_units).
UNITS_SHARE = 0.5


def check_units_at_start(d: ModelDesc, states: dict[str, float] | None, names: dict[int, str]) -> list[Finding]:
    """``states``: ``act{i}.dead_frac`` and ``pre{i}.saturated_frac`` of the hidden layers on
    the first probe rows before any update (see :func:`._one_run.unit_states`)."""
    out = []
    for key, share in sorted((states or {}).items()):
        if share < UNITS_SHARE:
            continue
        i = int(key.split(".")[0][3:])
        name = names.get(i, f"layer {i}")
        if key.endswith("dead_frac"):
            out.append(_f("dead-units-at-start", CAUSE, f"{pct(share)} of {name!r}'s ReLU units are zero on every probe "
                          "row before the first step: they get no gradient and stay dead",
                          fix.dead_units(d, name) + " (and check the bias and input scale)", fired="dead_fraction",
                          dead_fraction=share, layer=name))
        else:
            out.append(_f("saturated-at-start", CAUSE, f"{pct(share)} of {name!r}'s units are saturated before the first "
                          "step (derivative under 5% of its maximum, over the probe rows): they pass back almost no "
                          "gradient", fix.saturated_units(d, name) + ", and initialize the weights at the default scale",
                          fired="saturated_fraction", saturated_fraction=share, layer=name))
        break
    return out


def before_first_step(d: ModelDesc, x, y, *, weight_rms: float | None = None,
                      total_steps: int | None = None, spreads=None, units: dict | None = None,
                      unit_names: dict | None = None) -> list[Finding]:
    """Every check, in the order a user would fix them (the model and loss first)."""
    regression = d.loss in REGRESSION_LOSSES or (d.loss.startswith("custom") and y is not None
                                                  and np.issubdtype(np.asarray(y).dtype, np.floating))
    found = check_output_and_loss(d, y)
    if y is not None and not any(f.id == "output-loss-mismatch" for f in found):
        found += check_labels(d, y)
    found += check_arrays(d, x, y, regression)
    found += check_linear_stack(d)
    found += check_init(d, spreads)
    if not any(f.id in ("input-scale", "input-offset", "symmetric-init") for f in found):   # those explain it
        found += check_units_at_start(d, units, unit_names or {})
    found += check_learning_rate(d, weight_rms, total_steps)
    return found
