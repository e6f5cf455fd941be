"""How the trained model fits: regression predictions that explain nothing, and batch
norm's gap between training (batch statistics) and evaluation (running averages). Both
read final epoch metrics, not probes."""

from __future__ import annotations

import math

import numpy as np

from .._format import fmt
from ._compare import earlier_cause
from ._findings import CAUSE, CONSEQUENCE, Finding
from ._registry import register
from ._view import LevelView


@register({"predicts-the-mean": CAUSE}, rank=70)
def rule_predicts_the_mean(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Regression: predictions that explain no target variance on the test set (R² ≤ 0.1 and
    correlation < 0.3): the model is no better than predicting each output's mean."""
    if "test_r2" not in t.final:
        return []
    r2, corr = float(np.nanmedian(t.final["test_r2"])), float(np.nanmedian(t.final.get("test_corr", [np.nan])))
    if not (r2 <= 0.1 and (not math.isfinite(corr) or corr < 0.3)):
        return []
    ev = dict(fired="test_r2_median", test_r2_median=r2, test_corr_median=corr, test_r2=[float(x) for x in t.final["test_r2"]],
              reference_level=ref.level)
    text = (f"at {t.label}, the predictions explain none of the target variance: test R² {r2:.3g} (median over "
            f"{len(t.final['test_r2'])} seeds; 0 = predicting each output's mean) and correlation {corr:.2f} with the "
            f"targets")
    if "test_r2" in ref.final and ref is not t:
        ev["reference_test_r2_median"] = float(np.nanmedian(ref.final["test_r2"]))
        text += f". At {ref.label}: R² {ev['reference_test_r2_median']:.3g}"
    role = CAUSE
    if (cause := earlier_cause(found)) is not None:   # e.g. targets too far from the outputs' scale
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    return [Finding("predicts-the-mean", t.level, ev, text + ".", role=role)]


@register({"batchnorm-train-eval-gap": CAUSE}, rank=80)
def rule_batchnorm_train_eval_gap(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Batch norm trains on batch statistics and predicts with running averages: a validation
    loss far above the training loss (same units) at the end is that gap."""
    if not t.spec.model.batchnorm or "val_loss" not in t.final:
        return []
    tr, va = float(np.median(t.final["train_loss"])), float(np.median(t.final["val_loss"]))
    if not (tr > 0 and va / tr >= 10):
        return []
    ev = dict(fired="ratio", train_loss_median=tr, val_loss_median=va, ratio=va / tr)
    return [Finding("batchnorm-train-eval-gap", t.level, ev,
                    f"at {t.label}, the validation loss ({fmt(va, 3)}, running-average statistics) is {va / tr:.0f}× the "
                    f"training loss ({fmt(tr, 3)}, batch statistics) in the same units: what batch norm learned on "
                    f"batches does not carry over to evaluation.")]
