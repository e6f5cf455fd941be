"""Per-layer imbalance: one layer's updates orders of magnitude smaller than another's.

Principle: the relative update ‖ΔW‖/‖W‖ says how fast a kernel changes; two orders of
magnitude (100×) between the fastest and the slowest kernel (each a per-seed median over
the probed steps) means one layer is nearly frozen while another trains. That is a
pathology only if the model does not train: when the level's final metrics are inside
the reference's seed range (or it is the reference) it is reported as a note with its
numbers; otherwise it is a cause (or, where a cause ranked before it fired, a consequence).
"""

from __future__ import annotations

from .._levels import fmt
from ..probes import UpdateRatio
from ._compare import earlier_cause, within_reference_range
from ._findings import CAUSE, CONSEQUENCE, NOTE, Finding
from ._registry import register
from ._view import LevelView, key

ORDERS = 100.0


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
    if within_reference_range(t, ref):
        role = NOTE
        text += "; the model trains as well as the reference within seed noise, so this is not a problem"
    elif (cause := earlier_cause(found)) is not None:
        role, ev["consequence_of"] = CONSEQUENCE, cause.id
        text += f"; a consequence of {cause.id}"
    else:
        role = CAUSE
        text += "; training stalls"
    return [Finding("layer-imbalance", t.level, ev, text + ".", role=role)]
