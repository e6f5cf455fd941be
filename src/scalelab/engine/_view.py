"""What hooks and probes may see of a training group: a documented, read-only view.

Probes and other hooks read the engine through this view only, never through the group's
attributes, so the engine can change inside without breaking them, and the same probes can
read another source that offers the same view (the user's own training loop).
Nothing here changes training: tensors are handed out for reading (callers must not
modify them in place), and forward passes run in evaluation mode under ``no_grad``
unless the caller enables gradients itself. A hook acts on training only through the
requests at the end (:meth:`StepView.stop`, :meth:`StepView.keep_best`,
:meth:`StepView.put`), which the loop carries out at fixed points, so no hook can leave
the group half-changed.
"""

from __future__ import annotations

from types import MappingProxyType

import torch


class StepView:
    """A stacked group as its hooks see it. Every tensor has a leading model axis M."""

    def __init__(self, group):
        self._g = group
        self._records: list[list[tuple]] = [[] for _ in range(group.M)]
        self.batch: torch.Tensor | None = None   # this step's training rows (M, b), set by the loop
        self.loss: torch.Tensor | None = None    # this step's batch loss (M,), set after the step
        self.history: list[list[dict]] = [[] for _ in range(group.M)]   # epoch records so far, set by the loop
        self.keeper = None                       # the loop's Keeper: where keep_best snapshots go
        self._stop: set[int] = set()             # models that asked to stop after this epoch
        self._fields: list[dict] = [{} for _ in range(group.M)]
        self._resumed_at = group.step             # the step the group (re)started from, set by the loop

    # -- the group

    @property
    def trials(self):
        return self._g.trials

    @property
    def M(self) -> int:
        return self._g.M

    @property
    def device(self) -> torch.device:
        return self._g.device

    @property
    def dtype(self) -> torch.dtype:
        return self._g.dtype

    @property
    def n_train(self) -> int:
        return self._g.n_train

    @property
    def steps_per_epoch(self) -> int:
        return self._g.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self._g.total_steps

    @property
    def step(self) -> int:
        """Optimizer steps taken so far (0 before the first update)."""
        return self._g.step

    @property
    def classification(self) -> bool:
        return self._g.classification

    @property
    def clip(self) -> torch.Tensor:
        """Each model's probability clip of a softmax output, (M, 1) (0 on logits)."""
        return self._g.clip

    # -- layers and parameters

    @property
    def layers(self) -> list:
        """The model's layers (metadata: ``kind``, ``index``, parameter names)."""
        return self._g.model.layers

    @property
    def weighted(self) -> list:
        """The layers with a kernel and a bias (dense, conv), in order."""
        return self._g.model.weighted

    @property
    def params(self) -> MappingProxyType:
        """Current parameters, name -> (M, ...)."""
        return MappingProxyType(self._g.params)

    @property
    def grads(self) -> MappingProxyType:
        """The last step's batch gradients (what the optimizer got), name -> (M, ...)."""
        return MappingProxyType(self._g.grads)

    @property
    def grad_rows(self) -> MappingProxyType:
        """For a table a row-sparse optimizer steps by rows (engine._rows): its gradient in
        :attr:`grads` is (U, d), the rows used this step, and this maps its name to those
        rows' flat indices into the (M·V, d) table (model m owns rows m·V … m·V + V − 1).
        Empty for every other parameter."""
        return MappingProxyType(getattr(self._g, "grad_rows", {}))

    @property
    def optimizer_family(self) -> str:
        return self._g.opt.family

    @property
    def optimizer_step(self) -> int:
        """Updates the optimizer has applied (its step counter t)."""
        return self._g.opt.t

    def optimizer_state(self, name: str) -> dict[str, torch.Tensor]:
        """The optimizer's state ``name`` ("m", "v" for Adam; "buf" for momentum), per parameter."""
        moments = self._g.opt.moments
        if name not in moments:
            raise KeyError(f"the {self.optimizer_family} optimizer has no state {name!r}; it has {', '.join(moments)}")
        return dict(zip(self._g.opt.names, moments[name]))

    def hyperparameter(self, name: str) -> MappingProxyType:
        """Effective per-parameter hyperparameter ``name`` (lr, eps, wd, b1, b2, keras, mom) as
        (M, 1, 1) tensors: per-layer and equivalence multipliers applied."""
        return MappingProxyType(self._g.hp[name])

    # -- computing on the model

    def training_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of training rows ``rows`` (n,), the same rows for every model, each model's
        transforms applied: x (M, n, D), y (M, n) or (M, n, T)."""
        idx = rows.expand(self.M, -1)
        return self._g.inputs(self._g.X_train, idx), self._g.targets(self._g.y_train, idx)

    def forward(self, params, x, taps: dict | None = None) -> torch.Tensor:
        """Outputs (M, n, n_out) in evaluation mode; ``taps`` receives each layer's named tensors."""
        return self._g.forward(params, x, taps)

    def loss_per_sample(self, out, y) -> torch.Tensor:
        return self._g.loss_per_sample(out, y)

    def per_sample(self, params, x, y, taps: dict | None = None):
        """(per-sample losses (M, n), outputs) in evaluation mode."""
        return self._g.per_sample(params, x, y, taps)

    def objective(self, params, x, y):
        """(training objective per model (M,): mean loss + L2 penalty, outputs), evaluation mode."""
        return self._g.objective(params, x, y)

    # -- what hooks record

    def record(self, step: int, probe: str, names: list[str], table) -> None:
        """Rows (step, probe, name, value) for every model: ``table`` of shape (M, len(names))."""
        for m, row in enumerate(table):
            self._records[m].extend((step, probe, n, float(v)) for n, v in zip(names, row))

    def records(self, m: int) -> list[tuple]:
        return self._records[m]

    # -- what hooks ask of the loop (engine/_hooks.py documents the actions)

    def stop(self, m: int) -> None:
        """From :meth:`Hook.on_epoch_end`: model ``m`` may stop after this epoch. The models of
        a stacked group step together, so the group stops once every model asked in the same
        epoch (a model that asked keeps training meanwhile, as Keras's EarlyStopping does
        with ``restore_best_weights``: what it keeps is its best state, not its last)."""
        self._stop.add(m)

    def keep_best(self, m: int) -> None:
        """Model ``m``'s current state is its best so far: it is copied aside (through every
        checkpoint) and put back into the model after the last epoch, before
        :meth:`Hook.on_group_end`; the results' epochs still record every epoch trained."""
        self.keeper.hold(m, len(self.history[m]))

    def put(self, m: int, name: str, value) -> None:
        """A result field of model ``m`` (``TrialResult.fields[name]``), e.g. from
        :meth:`Hook.on_group_end`: what a study needs of the trained model beyond its metrics."""
        self._fields[m][name] = value

    def fields(self, m: int) -> dict:
        return self._fields[m]

    @torch.no_grad()
    def probabilities(self, part: str = "val"):
        """Class probabilities (M, n, K), float64 numpy, of every model on the ``part`` rows
        ("val" or "test") in evaluation mode."""
        g = self._g
        return g.probabilities(g.X_val if part == "val" else g.X_test)

    def scale_hyperparameter(self, name: str, param: str, model: int, multiply: float = 1.0,
                             divide: float = 1.0) -> None:
        """From :meth:`Hook.on_group_start` only: change one model's hyperparameter ``name`` of
        ``param`` (:meth:`StackedGroup.scale_hyperparameter`), for checks that compare a
        changed model with the rest of its group. Hyperparameters are rebuilt from the spec
        on a resume, which calls on_group_start again."""
        if self._g.step != self._resumed_at:
            raise RuntimeError("scale_hyperparameter is for on_group_start, before the group's next step")
        self._g.scale_hyperparameter(name, param, model, multiply, divide)
