"""``scalelab.watch``: the probes on an ordinary PyTorch training loop.

The watcher needs no change to the loop: it registers hooks, in the style of
``torch.utils.hooks``, and removes them on exit (``RemovableHandle``):

* the optimizer's step pre-hook and post-hook are the step's events: the probes that look
  at the model before the update run before ``optimizer.step()``, the gradient and update
  probes right after it;
* a forward pre-hook on the model keeps the first training inputs as the fixed probe batch,
  and a forward hook on the loss module sees the targets and the batch loss; a loss given as
  a function (``F.nll_loss``) is seen through a torch function mode (:class:`_LossSpy`);
* a hook on the last parameter's gradient sees whether the previous step's gradient was
  reset (``zero_grad``) before backward added the new one.

Every hook is contained (:mod:`._guard`): a failure is one "not probed" line, and the loop
runs on with the same numbers. What it computes is done by the same probe classes as the
built-in studies, through :class:`~._torch.TorchAdapter`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ._guard import Guard
from ._session import Session, validate
from ._torch import TorchAdapter


class _LossSpy(TorchFunctionMode):
    """Sees a loss given as a function (``F.nll_loss``) being called, and ``loss.backward()``:
    PyTorch routes every torch function through an active mode, which passes it on
    unchanged (the user's numbers are the same); scalelab's own computations are not watched."""

    def __init__(self, watcher: "Watcher"):
        super().__init__()
        self.w = watcher

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        w = self.w
        if not w.busy:
            if func is w.adapter.loss_fn and len(args) >= 2:
                w.guard.call("the loss's targets", w.loss_seen, args[0], args[1], out)
            elif func is torch.Tensor.backward and args and w._loss is None:
                w.guard.call("the loss", w.backward_seen, args[0])
        return out


class Watcher:
    """The probes on a PyTorch training loop; see :func:`scalelab.watch`."""

    def __init__(self, model, loss_fn, optimizer, *, study: str, db: str = "scalelab.db", probes: str = "cheap",
                 level: dict | None = None, seed: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, total_steps: int | None = None, probe_data=None,
                 probe_batch: int = 512, verbose: bool = True, verify: int | bool | None = None):
        validate(study, probes)
        from ._verify_watched import seeds_from_env

        # verify=N: at close, each cause's remedy on copies of the model from its initial weights (_verify_torch)
        self.verify_seeds, self._seen = seeds_from_env(verify), []
        self._init_state = ({k: v.detach().clone() for k, v in model.state_dict().items()}
                            if self.verify_seeds else None)
        self.guard = g = Guard()
        self.adapter = a = TorchAdapter(model, loss_fn, optimizer, g.lines)
        a.watcher = self
        known = {"profile": "torch",
                 "loss": {"name": "crossentropy", "from_logits": True, "clip": 0.0} if a.classification else
                 {"name": "mae" if a.loss_name == "mae" else "mse"},
                 "optim": {"name": "adam" if a.optimizer_family == "adam" else a.optimizer_family,
                           "lr": float(optimizer.defaults.get("lr", optimizer.param_groups[0]["lr"]))},
                 "model": {"batchnorm": any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())}}
        if epochs:
            known["train"] = {"epochs": int(epochs)}
        self.session = Session(a, study=study, db=db, probes=probes, level=level, seed=seed, probe_batch=probe_batch,
                               known=known, verbose=verbose, guard=g)
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps or (epochs * steps_per_epoch if epochs and steps_per_epoch else 10 ** 6)
        self.probe_data = probe_data
        self.findings: list = []
        self._x = self._batch_n = self._loss = self._y = None
        self._n_inputs = 1
        self._in_epoch = 0
        self.busy = False                 # scalelab's own computation is running (the spy looks away)
        self.accumulated, self.steps_seen, self._fresh = 0, 0, False   # missing zero_grad
        self.shapes = None                # (output shape, target shape) of the first loss call
        self._handles = [
            model.register_forward_pre_hook(g.wrap("the model's inputs", self._on_model_input)),
            optimizer.register_step_pre_hook(g.wrap("the step before the update", self._on_step_start)),
            optimizer.register_step_post_hook(g.wrap("the step after the update", self._on_step_end)),
        ]
        if isinstance(loss_fn, nn.Module):
            self._handles.append(loss_fn.register_forward_hook(g.wrap("the loss", self._on_loss)))
        last = next((p for p in reversed(list(model.parameters())) if p.requires_grad), None)
        if last is not None:
            self._handles.append(last.register_hook(g.wrap("the gradient reset check", self._on_grad)))
        self._spy = None
        if not isinstance(loss_fn, nn.Module):
            self._spy = _LossSpy(self)
            self._spy.__enter__()

    # -- hooks (each one contained: see _guard)

    def _training(self) -> bool:
        return self.adapter.model.training and torch.is_grad_enabled() and not self.busy

    def _on_model_input(self, module, args):
        if self._training() and args and isinstance(args[0], torch.Tensor):
            self._x, self._n_inputs = args[0], len(args)

    def _on_loss(self, module, args, output):
        if not torch.is_grad_enabled() or len(args) < 2 or self.busy:
            return
        self.loss_seen(args[0], args[1], output)

    def loss_seen(self, out, y, loss) -> None:
        self._loss, self._batch_n, self._y = loss, y.shape[0] if y.dim() else 1, y
        if self.shapes is None and isinstance(out, torch.Tensor):
            self.shapes = (tuple(out.shape), tuple(y.shape))
        if self.session.collecting and self._x is not None and self.probe_data is None and len(self._x) == len(y):
            self.session.offer_batch(self._x, y)
        if self.verify_seeds and not self.session.epochs and self._x is not None and len(self._x) == len(y):
            self._seen.append((self._x.detach().cpu().numpy().copy(), y.detach().cpu().numpy().copy()))

    def backward_seen(self, loss) -> None:
        if isinstance(loss, torch.Tensor) and loss.dim() == 0:
            self._loss, self._batch_n = loss, len(self._x) if self._x is not None else 1

    def _on_grad(self, grad):
        p_grad = self._last_param_grad()
        if self._fresh:   # the first backward since the last step: was the gradient reset?
            self._fresh = False
            if p_grad is not None and bool((p_grad != 0).any()):
                self.accumulated += 1
        return None

    def _last_param_grad(self):
        p = next((p for p in reversed(list(self.adapter.model.parameters())) if p.requires_grad), None)
        return None if p is None else p.grad

    def _on_step_start(self, optimizer, args, kwargs):
        s = self.session
        self.busy = True
        try:
            if self._y is not None:
                s.observe(self._y)
            if s.view is None and "the probe view" not in self.guard.off:
                if self._n_inputs > 1:
                    self.guard.note("the probes", f"the model's forward takes {self._n_inputs} inputs; the probes "
                                    "call it with one")
                    self.guard.off.add("the probe view")
                elif self.probe_data is None and not s._x:
                    self.guard.note("the probes", "the loss is a plain function: scalelab cannot see the targets; "
                                    "pass probe_data=(x, y)")
                    self.guard.off.add("the probe view")
                else:
                    self.guard.call("the probe view", s.start, self.total_steps,
                                    self.steps_per_epoch or self.total_steps, self.probe_data)
                    if s.desc is not None:
                        s.desc.epochs, s.desc.steps_per_epoch = self.epochs, self.steps_per_epoch
                        s.desc.batch_size = self._batch_n
            s.step_start()
        finally:
            self.busy = False

    def _on_step_end(self, optimizer, args, kwargs):
        self.busy = True
        try:
            loss = float(self._loss.detach()) if isinstance(self._loss, torch.Tensor) else float("nan")
            self.session.step_end(loss, self._batch_n or 1)
            self._loss, self._y = None, None
            self.steps_seen += 1
            self._fresh = True
            self._in_epoch += 1
            if self.steps_per_epoch and self._in_epoch == self.steps_per_epoch:
                self.epoch_end()
        finally:
            self.busy = False

    # -- the user's calls

    def epoch_end(self, **metrics) -> dict:
        """Close an epoch (automatic every ``steps_per_epoch`` steps): its training loss is the
        sample-weighted mean of its batch losses; ``metrics`` adds e.g. ``val_loss=``, ``test_acc=``."""
        self._in_epoch = 0
        s = self.session
        if metrics and s.epochs and not s._epoch_losses:
            s.epochs[-1].update({k: float(v) for k, v in metrics.items()})
            return s.epochs[-1]
        return self.guard.call("the epoch's metrics", s.epoch_end, metrics, default={})

    def remove(self) -> None:
        """Remove every hook (the model, loss and optimizer are as before)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        if self._spy is not None:
            spy, self._spy = self._spy, None
            self.guard.call("leaving the loss watch", spy.__exit__, None, None, None)

    def close(self) -> list:
        """Remove the hooks, store the run, print and return its findings."""
        self.remove()
        self.busy = True
        try:
            self.findings = self.session.finish() or []
            if self.verify_seeds and not self.guard.call("the verification", self._verify, default=False):
                print(f"scalelab: {self.session.study}: not verified: "
                      f"{dict(self.guard.lines).get('the verification', 'see above')}")
        finally:
            self.busy = False
        return self.findings

    def _verify(self) -> bool:
        """Each cause's remedy on copies of the model, on the batches this loop showed (_verify_torch)."""
        from ._verify_torch import verify_torch

        if not self._seen:
            raise ValueError("verify: the watcher saw no training batch with its targets")
        x, y = np.concatenate([b[0] for b in self._seen]), np.concatenate([b[1] for b in self._seen])
        self._seen = []
        s, a = self.session, self.adapter
        verify_torch(a.model, a.loss_fn, a.optimizer, self._init_state, x, y, self.findings, study=s.study, db=s.db,
                     level=s.level, seeds=self.verify_seeds, epochs=self.epochs or max(1, len(s.epochs)),
                     batch_size=(s.desc.batch_size if s.desc else None) or 32,
                     desc=s.desc.as_dict() if s.desc is not None else {}, verbose=s.verbose)
        return True

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:   # a failed loop: hooks off, nothing stored
            self.remove()
            self.guard.call("closing the store", self.session.store.close)


def watch(model, loss_fn, optimizer, *, study: str, **options) -> Watcher:
    """Record scalelab's probes inside an ordinary PyTorch training loop, store the run as
    a trial of study ``study`` (``db=``, default ``scalelab.db``) and print its findings::

        with scalelab.watch(model, loss_fn, opt, study="mine", probes="standard", steps_per_epoch=len(loader)):
            for epoch in range(5):
                for x, y in loader:
                    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

    ``probes``: none, cheap, standard or full (see :mod:`scalelab.probes`); ``level``: what
    this run is (``{"input.scale": "1/255"}``), runs of the same study are compared by
    level and runs of the same level are its seeds; ``epochs`` and ``steps_per_epoch`` (or
    ``total_steps``) place the probes on a log schedule; ``probe_data=(x, y)`` fixes the
    probe batch (default: the first ``probe_batch`` training samples the loop shows).
    Without ``with``, call ``close()`` after the loop."""
    return Watcher(model, loss_fn, optimizer, study=study, **options)
