"""A classifier whose loss stays at what predicting the label frequencies scores (one run)."""

from __future__ import annotations

import math

from ._findings import CAUSE, Finding
from ._one_run_refs import one_level, ref, role_after
from ._registry import register
from ._view import LevelView

# A model that ignores its inputs can at best predict the label frequencies, scoring their
# entropy H (log C when the classes are balanced). Learning is measured as the share of H
# removed; under 5% removed by the end of the run is no learning.
LEARNED_SHARE = 0.05


@register({"loss-at-chance": CAUSE}, rank=88)
def rule_loss_at_chance(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    H, logC, C = ref(t, "label_entropy"), ref(t, "log_classes"), ref(t, "n_classes")
    loss = t.final_train_loss
    if not (H > 0 and math.isfinite(loss)) or loss < (1 - LEARNED_SHARE) * H:
        return []
    ev = dict(fired="final_train_loss", final_train_loss=loss, label_entropy=H, log_classes=logC, n_classes=C,
              threshold=(1 - LEARNED_SHARE) * H)
    chance = f"log {C:.0f} = {logC:.3g}" if logC == logC else f"{H:.3g}"
    where = "at" if loss <= (1 + LEARNED_SHARE) * H else "above"
    text = (f"at {t.label}, the loss stays {where} the chance level: final train loss {loss:.3g} against {chance} for "
            f"guessing{'' if abs(H - logC) < 1e-3 or logC != logC else f' (the label frequencies score {H:.3g})'}: "
            "the model learned nothing from its inputs.")
    role, text = role_after(found, ev, text)
    return [Finding("loss-at-chance", t.level, ev, text, role=role)]
