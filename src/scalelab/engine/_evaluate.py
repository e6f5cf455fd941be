"""Evaluation of every model of a stacked group on a held-out set, in chunks."""

from __future__ import annotations

import numpy as np
import torch

from .. import optim as _optim


class EvaluateMixin:
    """:meth:`evaluate` of :class:`StackedGroup` (``self`` is the group)."""

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
        """Metrics of every model on (X, y), each an array of shape (M,): ``loss`` (the training
        objective), for classification ``acc``; for regression ``mse`` in the targets' original
        units, ``r2`` against predicting each output's mean on this set (1 − SSE/SST, summed over
        outputs) and ``corr`` (Pearson, predictions vs targets over all outputs)."""
        if getattr(self.custom_loss, "evaluate", None) is not None:   # a registered loss with metrics of its own
            return self.custom_loss.evaluate(X, y)
        M, n = self.M, len(X)
        nan = np.full(M, np.nan)
        if n == 0:
            return dict(loss=nan, acc=nan) if self.classification else dict(loss=nan, mse=nan, r2=nan, corr=nan)
        # Rows per chunk depend on the data only (~2^18 input values per model), never on M:
        # a trial's float32 sums then do not depend on how many models share its group.
        chunk = max(1, min(n, (1 << 18) // max(1, X.shape[1])))
        f64 = dict(dtype=torch.float64, device=self.device)
        loss_sum, correct = torch.zeros(M, **f64), torch.zeros(M, **f64)
        if not self.classification:
            T = y.shape[1]
            sse, sp, spp, spy = (torch.zeros(M, **f64) for _ in range(4))
            sy, syy = torch.zeros(T, **f64), torch.zeros(T, **f64)
        buf: dict = {}   # one gathered-rows buffer for every chunk (see inputs)
        for i in range(0, n, chunk):
            idx = torch.arange(i, min(n, i + chunk), device=self.device).expand(M, -1)
            xb, yb = self.inputs(X, idx, buf), self.targets(y, idx)
            per, out = self.per_sample(self.params, xb, yb)
            loss_sum += per.sum(1).double()
            if self.classification:
                correct += (out.argmax(-1) == yb).sum(1).double()
            else:
                p = self.to_original(out).double()
                yo = y[i: i + idx.shape[1]].double()                 # (b, T), the same rows for all models
                sse += (p - yo).pow(2).sum(dim=(1, 2))
                sp += p.sum(dim=(1, 2))
                spp += p.pow(2).sum(dim=(1, 2))
                spy += (p * yo).sum(dim=(1, 2))
                sy += yo.sum(0)
                syy += yo.pow(2).sum(0)
        loss = loss_sum / n
        if self.l2 is not None:
            loss = loss + _optim.l2_penalty(self.params, self.l2).double()
        res = dict(loss=loss.cpu().numpy())
        if self.classification:
            res["acc"] = (correct / n).cpu().numpy()
        else:
            N = n * T
            sst = (syy - sy.pow(2) / n).sum()
            res["mse"] = (sse / N).cpu().numpy()
            res["r2"] = (1 - sse / sst).cpu().numpy() if sst > 0 else nan
            cov = spy - sp * sy.sum() / N
            var_p, var_y = spp - sp.pow(2) / N, syy.sum() - sy.sum() ** 2 / N
            res["corr"] = (cov / (var_p * var_y).sqrt()).cpu().numpy()
        return res

    @torch.no_grad()
    def probabilities(self, X: torch.Tensor) -> np.ndarray:
        """Class probabilities (M, n, K) of every model on rows X (float64 softmax of the
        outputs), a chunk of rows at a time as :meth:`evaluate` reads them (~2^18 input values
        per model): all rows at once gathered M × n × p inputs (20 × 5,000 × 10,000 float32
        = 4 GB for a file's test set of 5,000 rows)."""
        n = len(X)
        if n == 0:
            return np.zeros((self.M, 0, 2))
        chunk = max(1, min(n, (1 << 18) // max(1, X.shape[1])))
        parts, buf = [], {}
        for i in range(0, n, chunk):
            idx = torch.arange(i, min(n, i + chunk), device=self.device).expand(self.M, -1)
            parts.append(torch.softmax(self.forward(self.params, self.inputs(X, idx, buf)).double(), -1).cpu().numpy())
        return np.concatenate(parts, 1)
