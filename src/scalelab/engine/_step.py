"""One training step of a stacked group: the compiled whole step of the fast path, its eager
twin (same operations, other rounding), or autograd through the model's forward (the default for every model)."""

from __future__ import annotations

import torch

from .. import optim as _optim
from . import _rows


class StepMixin:
    """The step of :class:`StackedGroup` (``self`` is the group)."""

    def _fused_step(self, X, y_all, idx, ps, *opt_args):
        """A whole fast-path step as one function for torch.compile: gather and transform
        the batch, loss and gradients by hand, the optimizer's in-place update."""
        names = self.opt.names
        x, y = self.inputs(X, idx), self.targets(y_all, idx)
        loss, out, grads = self.loss_and_grads(x, y, dict(zip(names, ps)))
        gs = [grads[n] for n in names]
        self.opt.kernel(ps, gs, *opt_args)
        return loss, out, y, gs

    @torch.no_grad()
    def _try_fused(self, idx):
        """The compiled whole step; None where it does not apply (a short last batch would
        need a second compile) or compiling failed (then the eager step from here on)."""
        if self._fused is None or idx.shape[1] != self.batch_size:
            return None
        ps = [self.params[n] for n in self.opt.names]
        args = self.opt.next_step_args()
        try:
            loss, out, y, gs = self._fused(self.X_train, self.y_train, idx, ps, *args)
        except Exception as e:  # no C++ compiler, an unsupported platform: eagerly (other rounding: see path())
            self._on_compile_fallback("training step", e)
            self._fused, self.compiled = None, self.opt.compiled
            self.opt.t -= 1
            return None
        self.grads = dict(zip(self.opt.names, gs))
        return loss, out, y

    def _l1_step(self):
        """L1 on kernels: the proximal step after the update (see optim/_proximal.py)."""
        if getattr(self, "l1", None) is not None:
            _optim.l1_prox(self.params, self.l1, self.hp["lr"])

    def train_step(self, idx: torch.Tensor):
        """One optimizer step on the batch rows ``idx`` (M, b); returns (loss (M,), outputs, targets)."""
        if (fused := self._try_fused(idx)) is not None:
            self.step += 1
            self._l1_step()
            return fused
        x = self.inputs(self.X_train, idx)
        y = self.targets(self.y_train, idx)
        if self.row_tables:   # tables updated on their used rows only (engine._rows)
            loss, out = _rows.row_sparse_step(self, x, y)
            self.step += 1
            return loss.detach(), out.detach(), y
        if self.manual_backward:
            loss, out, self.grads = self.loss_and_grads(x, y)
        else:
            loss, out = self.objective(self.params, x, y, training=True)
            names = self.opt.names
            grads = torch.autograd.grad(loss.sum(), [self.params[k] for k in names])
            self.grads = dict(zip(names, grads))
        self.opt.step(self.params, self.grads)  # in place: parameters keep their storage
        self._l1_step()
        self.step += 1
        return loss.detach(), out.detach(), y
