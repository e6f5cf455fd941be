from __future__ import annotations


from . import _records as records
from ._base import Probe, median


class SampleLoss(records.SampleLoss, Probe):
    """Classification, on the probe batch: how the loss is spread over samples (the share of
    the batch's summed loss carried by its 5% highest-loss samples, and the median
    per-sample loss) and the accuracy. A loss far above ln K with an ordinary accuracy,
    carried by a few samples, is a few confidently wrong samples with huge logits."""

    cost = 0
    needs_forward = True

    def applies(self, view):
        return view.classification

    def _compute(self, ctx):
        _, y, _, out, per = ctx.forward()
        n = per.shape[1]
        k = max(1, -(-n // 20))                          # ceil(5% of the samples)
        top = per.topk(k, dim=1).values.sum(1)
        return {self.TOP5_SHARE: top / per.sum(1).clamp_min(1e-30), self.MEDIAN: median(per),
                self.ACCURACY: (out.argmax(-1) == y).to(out.dtype).mean(1)}
