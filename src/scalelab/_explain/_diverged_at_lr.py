"""A watched run whose loss became NaN or inf: the step and the learning rate that took it there."""

from __future__ import annotations

from ._findings import CAUSE, Finding
from ._one_run_refs import model, one_level, role_after
from ._registry import register
from ._view import LevelView


@register({"diverged-at-lr": CAUSE}, rank=9, on_diverged=True)
def rule_diverged_at_lr(t: LevelView, reference=None, found=()) -> list[Finding]:
    if not one_level(t):
        return []
    m = model(t)
    if not t.diverged_steps or not m:
        return []
    lr = (m.get("hyper") or {}).get("learning_rate")
    step = min(t.diverged_steps)
    opt = m.get("optimizer") or "the optimizer"
    keras = m.get("framework") == "keras"
    lower = f"{lr / 10:g}" if lr else "a tenth of it"
    fix = (f"keras.optimizers.{opt}(learning_rate={lower})" if keras else
           f"torch.optim.{opt}(model.parameters(), lr={lower})")
    ev = dict(fired="step", step=step, learning_rate=lr, optimizer=opt, fix=fix)
    text = (f"at {t.label}, the loss became NaN/inf at step {step} with {opt} at learning rate "
            f"{lr:g}" if lr else f"at {t.label}, the loss became NaN/inf at step {step}")
    role, text = role_after(found, ev, text, float(step))
    if role == CAUSE:   # the rate is the fix only where nothing ranked before explains the divergence
        text = text.rstrip(".") + f": the steps overshoot; fix: {fix}."
    return [Finding("diverged-at-lr", t.level, ev, text, role=role, at=float(step))]
