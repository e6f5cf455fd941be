"""Keeping each model's trained parameters (``train.keep``): after the last epoch ("final")
or at the epoch with the best validation metric ("best").

"Best" compares a model with itself across epochs on one validation metric: accuracy for
classification, the error in the targets' own units (MSE) for regression, else (a registered
loss whose epochs report only their loss) the validation loss. A later epoch must be
strictly better; a non-finite value never is.

A hook may also hold a model's state (:meth:`Keeper.hold`, the hook action
``view.keep_best``): early stopping's best weights, put back into the model after the last
epoch (:meth:`Keeper.put_back`). Held states travel through checkpoints like the best ones.

A model's arrays: ``param/<name>`` and ``buffer/<name>`` (its slice of the stacked group,
in the layout :class:`StackedGroup` builds), and ``transform/…``, the input and target
transforms fitted on its training data, so a loaded model takes raw inputs and answers in
the targets' units without the training data. The best snapshot so far is part of each
checkpoint, so a resumed group keeps the same one.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def snapshot(g, m: int) -> dict[str, np.ndarray]:
    """Model ``m``'s parameters, buffers and fitted transforms, copied to host memory."""
    out = {f"param/{k}": v[m].detach().cpu().numpy().copy() for k, v in g.params.items()}
    out |= {f"buffer/{k}": v[m].detach().cpu().numpy().copy() for k, v in g.buffers.items()}
    for name in ("in_scale", "in_offset", "t_scale", "t_offset"):
        t = getattr(g, name)
        if t is not None:
            out[f"transform/{name}"] = t[m].detach().cpu().numpy().copy()
    return out


def put(g, m: int, arrays: dict[str, np.ndarray]) -> None:
    """Copy a snapshot into model ``m`` of the group (shapes must match: the same spec)."""
    with torch.no_grad():
        for prefix, target in (("param/", g.params), ("buffer/", g.buffers)):
            for k, v in target.items():
                v[m].copy_(torch.as_tensor(arrays[prefix + k]))
        for name in ("in_scale", "in_offset", "t_scale", "t_offset"):
            t = getattr(g, name)
            if t is not None:
                t[m].copy_(torch.as_tensor(arrays[f"transform/{name}"]))


def validation_metric(g, rec: dict) -> tuple[float, bool]:
    """(value, higher is better) of an epoch record's validation metric."""
    if g.classification and not math.isnan(rec.get("val_acc", math.nan)):
        return rec["val_acc"], True
    if "val_mse" in rec:
        return rec["val_mse"], False
    return rec.get("val_loss", math.nan), False


# ``group_size``: how many models shared the group. CPU batched matmuls may round a model's
# outputs differently with another number of models beside it, so scalelab.load evaluates a
# kept model in a group of that size (copies of it) to give the stored numbers bit for bit.


class Keeper:
    """What each model of a group keeps; :meth:`on_epoch` after every evaluated epoch."""

    def __init__(self, g):
        self.g = g
        self.modes = [t.spec.train.keep for t in g.trials]
        self.best: list[tuple[int, float] | None] = [None] * g.M
        self.arrays: list[dict | None] = [None] * g.M
        self.held: list[dict | None] = [None] * g.M        # a hook's keep_best (put back at the end)
        self.held_epoch: list[int | None] = [None] * g.M

    @property
    def active(self) -> bool:
        return any(m != "none" for m in self.modes)

    def on_epoch(self, epoch: int, records: list[dict]) -> None:
        for m, rec in enumerate(records):
            if self.modes[m] != "best":
                continue
            value, higher = validation_metric(self.g, rec)
            if not math.isfinite(value):
                continue
            old = self.best[m]
            if old is None or (value > old[1] if higher else value < old[1]):
                self.best[m] = (epoch, value)
                self.arrays[m] = snapshot(self.g, m)

    def hold(self, m: int, epoch: int) -> None:
        """Copy model ``m``'s state aside as its best (``epoch``: the epochs it has trained)."""
        self.held[m], self.held_epoch[m] = snapshot(self.g, m), epoch

    def put_back(self) -> None:
        """Every held state back into its model (Keras's restore_best_weights)."""
        for m, arrays in enumerate(self.held):
            if arrays is not None:
                put(self.g, m, arrays)

    def result(self, m: int, last_epoch: int) -> dict | None:
        """What model ``m`` keeps: {which, epoch, arrays} (None for keep = "none")."""
        mode, M = self.modes[m], self.g.M
        if mode == "final":
            return dict(which="final", epoch=last_epoch, arrays=snapshot(self.g, m), group_size=M)
        if mode == "best" and self.best[m] is not None:
            return dict(which="best", epoch=self.best[m][0], arrays=self.arrays[m], group_size=M)
        return None

    # -- through a checkpoint
    def capture(self, state: dict) -> None:
        state["meta"]["keep_best"] = self.best
        for m, arrays in enumerate(self.arrays):
            for k, a in (arrays or {}).items():
                state["tensors"][f"best/{m}/{k}"] = a
        state["meta"]["held_epoch"] = self.held_epoch
        for m, arrays in enumerate(self.held):
            for k, a in (arrays or {}).items():
                state["tensors"][f"held/{m}/{k}"] = a

    def restore(self, state: dict) -> None:
        self.best = [None if b is None else tuple(b) for b in state["meta"].get("keep_best", [None] * self.g.M)]
        for m in range(self.g.M):
            prefix = f"best/{m}/"
            arrays = {k[len(prefix):]: a for k, a in state["tensors"].items() if k.startswith(prefix)}
            self.arrays[m] = arrays or None
        self.held_epoch = list(state["meta"].get("held_epoch", [None] * self.g.M))
        for m in range(self.g.M):
            prefix = f"held/{m}/"
            self.held[m] = {k[len(prefix):]: a for k, a in state["tensors"].items() if k.startswith(prefix)} or None
