from __future__ import annotations

import weakref

from . import _records as records
from ._base import Probe


class Scales(records.Scales, Probe):
    """Scales the model sees, on the probe batch (inputs after the transform, targets in the
    units trained on): the ratio of the largest to the smallest per-feature std over
    features that vary (a linear first layer's curvature along feature j scales with its
    variance, so the Hessian's condition number is at least this ratio squared), and for
    regression the mean and std of the outputs and of the targets (over samples and outputs).
    Integer inputs are token ids (an embedding's lookup keys), not measurements: they have
    no scale a layer's curvature sees, so the input ratio is not recorded for them."""

    cost = 0
    needs_forward = True

    _input_ratio = None   # (weak reference to a group's view, its input ratio)

    def _compute(self, ctx):
        x, y, _, out, _ = ctx.forward()
        res = {}
        if x.is_floating_point():   # token ids (int64) are keys, not scales
            res[self.INPUT_STD_RATIO] = self._ratio(ctx.view, x)
        if not ctx.view.classification:
            res[self.OUTPUT_MEAN] = out.mean(dim=(1, 2))
            res[self.OUTPUT_STD] = out.std(dim=(1, 2), unbiased=False)
            yy = y.reshape(out.shape[0], out.shape[1], -1)
            res[self.TARGET_MEAN] = yy.mean(dim=(1, 2))
            res[self.TARGET_STD] = yy.std(dim=(1, 2), unbiased=False)
        return res

    def _ratio(self, view, x):
        """The input ratio of a group: its probe rows and input transforms are fixed for the
        whole group, so the value is computed once (a strided std over all M models' probe
        inputs, ~30 ms at M = 15 × 512 × 784) and the same tensor recorded at every step."""
        cached = self._input_ratio
        if cached is not None and cached[0]() is view:
            return cached[1]
        x = x.flatten(2)
        sd = x.std(dim=1, unbiased=False)                      # (M, D)
        varies = sd > 1e-12 * sd.amax(dim=1, keepdim=True).clamp_min(1e-300)
        lo = sd.masked_fill(~varies, float("inf")).amin(dim=1)
        ratio = sd.amax(dim=1) / lo.clamp_min(1e-300)
        self._input_ratio = (weakref.ref(view), ratio)
        return ratio
