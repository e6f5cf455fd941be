"""Per-layer imbalance: one layer's updates orders of magnitude smaller than another's.

Principle: the relative update ‖ΔW‖/‖W‖ says how fast a kernel changes; two orders of
magnitude (100×) between the fastest and the slowest kernel (each a per-seed median over
the probed steps) means one layer is nearly frozen while another trains. That is a
pathology only if the model does not train: the level "stalls" when its probe-batch loss
fell by less than half as much as the reference's over the same steps (without the loss
probe: when its final metrics are outside the reference's seed range). A level that
trains gets a note with the numbers; one that stalls a cause (or, where a cause ranked
before it fired, a consequence).
"""

from __future__ import annotations

from .._levels import fmt
from ..probes import Loss, UpdateRatio
from ._compare import earlier_cause, within_reference_range
from ._findings import CAUSE, CONSEQUENCE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

ORDERS = 100.0
STALL = 0.5      # it stalls when its loss fell by less than half as much as the reference's
PROBE_LOSS = key(Loss, Loss.PROBE_BATCH)


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
    ev = dict(fastest=hi, slowest=lo, fastest_ratio=med[hi], slowest_ratio=med[lo], imbalance=med[hi] / med[lo],
              reference_level=ref.level, reference_ratios=ref_med, steps=len(t.steps(*key(UpdateRatio,
                                                                                        UpdateRatio.RATIO, param=lo))))
    text = (f"at {t.label}, {lo}'s updates are {fmt(med[hi] / med[lo], 3)}× smaller than {hi}'s (‖ΔW‖/‖W‖, median "
            f"over {ev['steps']} probed steps: {fmt(med[lo], 3)} vs {fmt(med[hi], 3)})")
    if len(ref_med) == 2 and ref is not t:
        text += f"; at {ref.label}: {fmt(ref_med[lo], 3)} vs {fmt(ref_med[hi], 3)}"
    progress, ref_progress = _progress(t), _progress(ref)
    ev.update(loss_progress=progress, reference_loss_progress=ref_progress)
    stalls = progress < STALL * ref_progress if progress == progress and ref_progress == ref_progress \
        else not within_reference_range(t, ref)
    if t is ref or not stalls:
        role = NOTE
        text += (f"; the model trains (its probe-batch loss fell by {fmt(progress, 3)}, against {fmt(ref_progress, 3)} at "
                 f"{ref.label}), so this is a note, not a pathology")
    elif (cause := earlier_cause(found)) is not None:
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    else:
        role = CAUSE
        text += (f"; training stalls: its probe-batch loss fell by {fmt(progress, 3)}, less than half of the "
                 f"{fmt(ref_progress, 3)} at {ref.label}")
    return [Finding("layer-imbalance", t.level, ev, text + ".", role=role)]
