"""A regression whose loss stays at what predicting the mean scores (one run)."""

from __future__ import annotations

import math

from ._findings import CAUSE, Finding
from ._one_run_refs import model, one_level, ref, role_after
from ._registry import register
from ._view import LevelView

# Predicting the targets' mean scores their variance in MSE (their mean absolute deviation
# from the median in MAE); a final loss within 5% of it means under 5% of the targets'
# spread was explained (R² < 0.05).
EXPLAINED_SHARE = 0.05


@register({"loss-at-mean": CAUSE}, rank=89)
def rule_loss_at_mean(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    m = model(t) or {}
    loss_name = m.get("loss", "mse")
    baseline = ref(t, "target_mad") if loss_name == "mae" else ref(t, "target_var")
    loss = t.final_train_loss
    if loss_name not in ("mse", "mae") or not (baseline > 0 and math.isfinite(loss)) or \
            loss < (1 - EXPLAINED_SHARE) * baseline:
        return []
    what = "the targets' mean absolute deviation" if loss_name == "mae" else "the targets' variance"
    ev = dict(fired="final_train_loss", final_train_loss=loss, baseline=baseline, threshold=(1 - EXPLAINED_SHARE) * baseline)
    text = (f"at {t.label}, the model predicts the mean: final train loss {loss:.3g} against {baseline:.3g}, "
            f"{what}, which predicting the mean scores.")
    role, text = role_after(found, ev, text)
    return [Finding("loss-at-mean", t.level, ev, text, role=role)]
