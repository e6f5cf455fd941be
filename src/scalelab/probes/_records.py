"""What each probe records, without the computation (and without torch): its name and the
names of its quantities, as the store keeps them and as explain, the report and the HTML read
them. Each probe class (one per file) inherits its record class from here, so a quantity's
name is written once; readers import these classes and never load torch."""

from __future__ import annotations

import math


class Activations:
    name = "activations"
    PRE_MEAN, PRE_STD, PRE_MAX_ABS = "pre{layer}.mean", "pre{layer}.std", "pre{layer}.max_abs"
    ACT_MEAN, ACT_STD, ACT_MAX_ABS = "act{layer}.mean", "act{layer}.std", "act{layer}.max_abs"
    DEAD_FRAC = "act{layer}.dead_frac"
    quantities = (PRE_MEAN, PRE_STD, PRE_MAX_ABS, ACT_MEAN, ACT_STD, ACT_MAX_ABS, DEAD_FRAC)


class AdamEps:
    name = "adam_eps"
    SHARE_MEDIAN, DOMINATED_FRAC = "{param}.eps_share_median", "{param}.eps_dominated_frac"
    quantities = (SHARE_MEDIAN, DOMINATED_FRAC)


class ErrorSignal:
    name = "error_signal"
    RMS = "pre{layer}.error_rms"
    quantities = (RMS,)


class Gradients:
    name = "gradients"
    NORM, TOTAL_NORM = "{param}.norm", "total.norm"
    quantities = (NORM, TOTAL_NORM)


class Hessian:
    name = "hessian"
    MAX_EIGENVALUE, MIN_EIGENVALUE = "max_eigenvalue", "min_eigenvalue"
    TOP_EIGENVALUE = MAX_EIGENVALUE      # the largest (algebraic) eigenvalue, what the 2/lr limit reads
    quantities = (MAX_EIGENVALUE, MIN_EIGENVALUE)


class Logits:
    name = "logits"
    MAX_ABS, MEDIAN_RANGE = "max_abs", "median_range"
    BELOW_CLIP, ABOVE_CLIP = "p_true_below_clip", "p_true_above_1-clip"
    PRED_SHARE, TOP_CLASS_SHARE, CLASSES_FOR_95 = "pred_share.{cls}", "top_class_share", "classes_for_95pct"
    TRUE_CLASSES_FOR_95 = "true_classes_for_95pct"   # the same count for the labels: what collapse compares with
    quantities = (MAX_ABS, MEDIAN_RANGE, BELOW_CLIP, ABOVE_CLIP, PRED_SHARE, TOP_CLASS_SHARE, CLASSES_FOR_95,
                  TRUE_CLASSES_FOR_95)


class Loss:
    name = "loss"
    PROBE_BATCH, BATCH = "probe_batch", "batch"
    quantities = (PROBE_BATCH, BATCH)


class PreactivationStep:
    name = "preact_step"
    RMS_CHANGE, REL_CHANGE = "pre{layer}.rms_change", "pre{layer}.rel_change"
    quantities = (RMS_CHANGE, REL_CHANGE)


class SampleLoss:
    name = "sample_loss"
    TOP5_SHARE, MEDIAN, ACCURACY = "top5pct_share", "median", "accuracy"
    quantities = (TOP5_SHARE, MEDIAN, ACCURACY)


# A unit is saturated where its pre-activation sits in the activation's flat tail: where the
# activation's derivative is at most PEAK_SHARE (1%) of its peak, so the unit passes on at
# most 1% of the backpropagated signal (and it falls exponentially beyond). One principle,
# a threshold per activation (saturation_z): tanh |z| > atanh(√0.99) ≈ 2.993, sigmoid
# |z| > ln((1 + √0.99)/(1 − √0.99)) ≈ 5.986 (a fixed |z| > 3 would be 1% for tanh but 18%
# for sigmoid).
PEAK_SHARE = 0.01

DERIVATIVES = {   # of the activation, from its output a (and its input z for relu)
    "tanh": (lambda z, a: 1 - a * a, 1.0),
    "sigmoid": (lambda z, a: a * (1 - a), 0.25),
}


def saturation_z(fn: str, share: float = PEAK_SHARE) -> float:
    """The |z| beyond which activation ``fn``'s derivative is below ``share`` of its peak.
    tanh' = 1 − tanh² = share at tanh z = √(1 − share); sigmoid' = σ(1 − σ) = share/4 at
    σ = (1 + √(1 − share))/2, i.e. z = ln(σ/(1 − σ)) = 2·atanh(√(1 − share))."""
    s = math.sqrt(1.0 - share)
    if fn == "tanh":
        return math.atanh(s)
    if fn == "sigmoid":
        return math.log((1 + s) / (1 - s))
    raise ValueError(f"saturation of {fn!r}: only tanh and sigmoid saturate")


SATURATION_Z = {fn: saturation_z(fn) for fn in DERIVATIVES}


class Saturation:
    name = "saturation"
    SATURATED, REL_DERIVATIVE = "pre{layer}.saturated_frac", "act{layer}.rel_derivative"
    quantities = (SATURATED, REL_DERIVATIVE)


class Scales:
    name = "scales"
    INPUT_STD_RATIO = "input.std_ratio"
    OUTPUT_MEAN, OUTPUT_STD, TARGET_MEAN, TARGET_STD = "output.mean", "output.std", "target.mean", "target.std"
    quantities = (INPUT_STD_RATIO, OUTPUT_MEAN, OUTPUT_STD, TARGET_MEAN, TARGET_STD)


class UpdateRatio:
    name = "update"
    RATIO, RMS = "{param}.ratio", "{param}.rms"
    quantities = (RATIO, RMS)


class ZeroGradient:
    name = "zero_grad"
    SHARE, SHARE_CORRECT, SHARE_WRONG = "share", "share_correct", "share_wrong"
    quantities = (SHARE, SHARE_CORRECT, SHARE_WRONG)


# the probes of each preset, by cost
PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "cheap": ("loss", "gradients", "logits", "zero_grad", "sample_loss", "scales", "saturation"),
    "standard": ("loss", "gradients", "logits", "zero_grad", "sample_loss", "scales", "saturation", "activations",
                 "update", "preact_step", "adam_eps", "error_signal"),
    "full": ("loss", "gradients", "logits", "zero_grad", "sample_loss", "scales", "saturation", "activations",
             "update", "preact_step", "adam_eps", "error_signal", "hessian"),
}
