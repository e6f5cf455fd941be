"""Per-layer imbalance: one layer's updates orders of magnitude smaller than another's.

Principle: the relative update ‖ΔW‖/‖W‖ says how fast a kernel changes; two orders of
magnitude (100×) between the fastest and the slowest kernel (each a per-seed median over
the probed steps) means one layer is nearly frozen while another trains. That is a
pathology only if the model does not train: a level whose final metrics lie inside the
reference's seed range (``within_reference_range``: its mean test accuracy or R² at least
the reference's worst seed, the criterion every rule uses) trains, and gets a note with
the numbers; one outside it "stalls" and gets a cause (or, where a cause ranked before it
fired, a consequence). The probe-batch loss's fall is quoted beside, as evidence. The
finding's time is the first probed update where the two kernels' mean ratios are 100×
apart.
"""

from __future__ import annotations

import numpy as np

from .._format import fmt
from ..probes._records import Loss, UpdateRatio
from ._compare import earlier_cause, seed_values, value_at, within_reference_range
from ._findings import CAUSE, CONSEQUENCE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

ORDERS = 100.0
PROBE_LOSS = key(Loss, Loss.PROBE_BATCH)


def _headline(t: LevelView, ref: LevelView) -> tuple[str, float, float] | None:
    """(metric, the level's mean, the reference's worst seed) of the metric
    ``within_reference_range`` compares, or None without a test metric."""
    for name in ("test_r2", "test_acc"):
        a, r = seed_values(t, name), seed_values(ref, name)
        if len(a) and len(r):
            return name, float(np.mean(a)), float(np.min(r))
    return None


def _progress(v: LevelView) -> float:
    """How far the probe-batch loss fell from the first to the last probed step (mean over seeds)."""
    if not v.has(*PROBE_LOSS):
        return float("nan")
    steps = v.steps(*PROBE_LOSS)
    return v.mean_at(*PROBE_LOSS, steps[0]) - v.mean_at(*PROBE_LOSS, steps[-1])


@register({"layer-imbalance": CAUSE}, rank=55, needs=((UpdateRatio, UpdateRatio.RATIO),))
def rule_layer_imbalance(t: LevelView, ref: LevelView, found=()) -> list[Finding]:
    """Fastest vs slowest kernel's median relative update: ≥ 100×."""
    med = {f["param"]: t.per_seed_median(UpdateRatio.name, n)
           for n, f in t.names(UpdateRatio.name, UpdateRatio.RATIO).items() if f["param"].endswith(".W")}
    med = {p: m for p, m in med.items() if m == m and m > 0}
    if len(med) < 2:
        return []
    hi, lo = max(med, key=med.get), min(med, key=med.get)
    if med[hi] < ORDERS * med[lo]:
        return []
    ref_med = {p: ref.per_seed_median(*key(UpdateRatio, UpdateRatio.RATIO, param=p)) for p in (hi, lo)
               if ref.has(*key(UpdateRatio, UpdateRatio.RATIO, param=p))}
    ev = dict(fired="imbalance", fastest=hi, slowest=lo, fastest_ratio=med[hi], slowest_ratio=med[lo], imbalance=med[hi] / med[lo],
              reference_level=ref.level, reference_ratios=ref_med, steps=len(t.steps(*key(UpdateRatio,
                                                                                        UpdateRatio.RATIO, param=lo))))
    text = (f"at {t.label}, {lo}'s updates are {fmt(med[hi] / med[lo], 3)}× smaller than {hi}'s (‖ΔW‖/‖W‖, median "
            f"over {ev['steps']} probed steps: {fmt(med[lo], 3)} vs {fmt(med[hi], 3)})")
    if len(ref_med) == 2 and ref is not t:
        text += f"; at {ref.label}: {fmt(ref_med[lo], 3)} vs {fmt(ref_med[hi], 3)}"
    progress, ref_progress = _progress(t), _progress(ref)
    ev.update(loss_progress=progress, reference_loss_progress=ref_progress)
    k_hi, k_lo = (key(UpdateRatio, UpdateRatio.RATIO, param=p) for p in (hi, lo))
    probed = t.steps(*k_lo)
    ev["step"] = next((s for s in probed if value_at(t, k_hi, s) >= ORDERS * value_at(t, k_lo, s)), probed[0])
    metric = _headline(t, ref)
    if metric is not None:
        ev.update(metric=metric[0], metric_mean=metric[1], reference_metric_worst=metric[2])
        name = {"test_acc": "test accuracy", "test_r2": "test R²"}[metric[0]]
        quoted = f"mean {name} {fmt(metric[1], 3)} against {fmt(metric[2], 3)} for {ref.label}'s worst seed"
    else:
        quoted = "no test metric to compare"
    trained = f"its probe-batch loss fell by {fmt(progress, 3)}, against {fmt(ref_progress, 3)} at {ref.label}"
    if t is ref or within_reference_range(t, ref):
        role = NOTE
        text += (f"; the model trains ({quoted}, inside {ref.label}'s seed range; {trained}), so this is a note, "
                 f"not a pathology")
    elif (cause := earlier_cause(found, ev["step"] + 0.5)) is not None:
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    else:
        role = CAUSE
        text += f"; training stalls: its final metrics are outside {ref.label}'s seed range ({quoted}; {trained})"
    text += f". The imbalance first reaches 100× at update {ev['step']}"
    return [Finding("layer-imbalance", t.level, ev, text + ".", role=role, at=ev["step"] + 0.5)]
