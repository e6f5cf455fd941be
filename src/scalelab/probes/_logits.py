from __future__ import annotations

import torch

from . import _records as records
from ._base import Probe, median


class Logits(records.Logits, Probe):
    """Classification outputs on the probe batch: max |logit|, median logit range (max −
    min per sample), the share of samples whose true-class probability is below the clip
    (the zero-gradient region of a clipped cross-entropy) or above 1 − clip, and the
    predicted-class histogram: each class's share, the top class's share and how many
    classes cover 95% of the predictions (collapse to few classes)."""

    cost = 1
    needs_forward = True

    def applies(self, view):
        return view.classification

    def _compute(self, ctx):
        view = ctx.view
        _, y, _, out, _ = ctx.forward()
        p = torch.softmax(out, dim=-1)
        p_true = p.gather(-1, y.unsqueeze(-1)).squeeze(-1) / p.sum(-1)
        clip = view.clip                                           # (M, 1)
        res = {
            self.MAX_ABS: out.abs().amax(dim=(1, 2)),
            self.MEDIAN_RANGE: median(out.amax(-1) - out.amin(-1)),
            self.BELOW_CLIP: (p_true < clip).to(out.dtype).mean(1),
            self.ABOVE_CLIP: (p_true > 1 - clip).to(out.dtype).mean(1),
        }
        k = out.shape[-1]
        pred = out.argmax(-1)                                    # (M, n)
        counts = torch.zeros(view.M, k, dtype=out.dtype, device=out.device)
        counts.scatter_add_(1, pred, torch.ones_like(pred, dtype=out.dtype))
        share = counts / pred.shape[1]
        for c in range(k):
            res[self.PRED_SHARE.format(cls=c)] = share[:, c]
        top = share.sort(dim=1, descending=True).values
        res[self.TOP_CLASS_SHARE] = top[:, 0]
        res[self.CLASSES_FOR_95] = covering(top)
        true = torch.zeros(view.M, k, dtype=out.dtype, device=out.device)
        true.scatter_add_(1, y, torch.ones_like(y, dtype=out.dtype))
        res[self.TRUE_CLASSES_FOR_95] = covering((true / y.shape[1]).sort(dim=1, descending=True).values)
        return res


def covering(top: torch.Tensor) -> torch.Tensor:
    """The fewest classes whose shares (sorted, descending; (M, k)) sum to 95%: (M,)."""
    return ((top.cumsum(1) < 0.95 - 1e-9).sum(1) + 1).to(top.dtype)
