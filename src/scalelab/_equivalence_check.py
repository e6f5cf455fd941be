"""The numerical proof of :mod:`scalelab._equivalence`'s rules: train model A, its exact
reparametrization B and the naive B side by side in one stacked group and compare them
step by step, on the engine's loop with a hook. It sits above the engine (the rules
themselves sit below it)."""

from __future__ import annotations

import math

from ._equivalence import parametrization
from .engine import Hook
from .optim._families import family_of

DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "adam": 1e-3, "adamw": 1e-3}


def equivalence_spec(c: float, optimizer: str, *, base_scale: float = 1 / 255, lr: float | None = None,
                     l2: float = 0.0, weight_decay: float = 0.0, eps_mode: str = "keras", dtype: str = "float64",
                     hidden: tuple[int, ...] = (128,), dataset: str = "fashion-mnist", train_subset: int = 6000,
                     seed: int = 0, data_dir: str | None = None, batch_size: int = 32):
    """A three-arm study: A (inputs × base_scale), B (inputs × base_scale·c trained with
    :func:`parametrization`) and naive (inputs × base_scale·c, nothing else changed)."""
    from ._spec import parse_spec

    profile = "keras" if eps_mode == "keras" else "torch"
    d = dict(name="equivalence", profile=profile, seeds=[seed],
             data=dict(dataset=dataset, validation=0, train_subset=train_subset, test_subset=1000,
                       **({"dir": data_dir} if data_dir else {})),
             input=dict(transform="scale", scale=base_scale),
             model=dict(hidden=list(hidden)),
             optim=dict(name=optimizer, lr=lr or DEFAULT_LR[optimizer], l2=l2, weight_decay=weight_decay,
                        eps_mode=eps_mode),
             train=dict(batch_size=batch_size, epochs=1, dtype=dtype, device="cpu", compile=False),
             arms={"A": {}, "B": {"input.scale": base_scale * c, "input.equivalent_to": base_scale},
                   "naive": {"input.scale": base_scale * c},
                   # made "lr only" below: B with only the learning-rate half of the rules
                   "lr_only": {"input.scale": base_scale * c, "input.equivalent_to": base_scale}})
    return parse_spec(d)


class _Compare(Hook):
    """The check as a hook on the engine's loop (built in the process that trains)."""

    def __init__(self, c: float, optimizer: str, ref):
        self.c, self.optimizer, self.ref = c, optimizer, ref
        self.worst = {"exact": [0.0, 0.0], "naive": [0.0, 0.0], "lr_only": [0.0, 0.0], "rounding": [0.0, 0.0]}

    def on_group_start(self, view) -> None:
        W1, c = view.weighted[0].weight, self.c
        # The commenter's fix in seed 001, "scale the learning rate like the input": first-layer
        # lr × 1/c and nothing else (SGD: lr/c instead of lr/c²; Adam: eps left as it was).
        if family_of(self.optimizer).name == "adam":
            view.scale_hyperparameter("eps", W1, 3, divide=c)
            view.scale_hyperparameter("wd", W1, 3, divide=c)
        else:
            view.scale_hyperparameter("lr", W1, 3, multiply=c)
            view.scale_hyperparameter("wd", W1, 3, divide=c)

    def _record(self, name, d_loss, d_w):
        for i, d in enumerate((d_loss, d_w)):
            self.worst[name][i] = math.inf if not math.isfinite(d) else max(self.worst[name][i], d)

    def on_step_end(self, view) -> None:
        import torch

        W1, c, loss = view.weighted[0].weight, self.c, view.loss
        params = view.params
        if self.ref is not None:   # A in float64 takes the same step on model 0's batch
            loss64, _, _ = self.ref.train_step(view.batch[:1])
            self._record("rounding", abs(float(loss[0]) - float(loss64[0])),
                         float((params[W1][0].detach().double() - self.ref.params[W1][0].detach()).abs().max()))
        with torch.no_grad():
            for name, m in (("exact", 1), ("naive", 2), ("lr_only", 3)):
                self._record(name, abs(float(loss[m]) - float(loss[0])),
                             float((params[W1][m] * c - params[W1][0]).abs().max()))



def check_equivalence(c: float, optimizer: str, steps: int = 300, data_dir: str | None = None, **kw) -> dict:
    """Train A, B and naive B on the same batches for ``steps`` steps in one stacked group
    (the engine's loop, train.steps = ``steps``) and compare them step by step, from a hook:
    the largest |loss_A − loss_B| over steps and the largest |c·W1_B − W1_A| over steps and
    entries, for the exact and the naive B. Diverged or non-finite differences are reported
    as inf."""
    from ._spec import expand
    from .engine import StackedGroup, train_group

    p = parametrization(c, optimizer)  # validates c and the optimizer before any data is loaded
    spec = equivalence_spec(c, optimizer, data_dir=data_dir, **kw)
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"steps": steps})})
    # In float32 rounding alone makes two runs drift apart (SGD near its stability edge
    # amplifies it quickly). The yardstick: A itself in float32 against A in float64,
    # stepped by the hook on the same batches.
    ref = None
    if spec.train.dtype == "float32":
        ref = StackedGroup(expand(spec.model_copy(update={"train": spec.train.model_copy(
            update={"dtype": "float64"})}))[:1], data_dir)
    compare = _Compare(c, optimizer, ref)
    train_group(expand(spec), data_dir, hooks=[compare])
    worst = compare.worst
    return dict(c=c, optimizer=optimizer, steps=steps, dtype=spec.train.dtype, eps_mode=spec.optim.eps_mode,
                lr=spec.optim.lr, l2=spec.optim.l2, weight_decay=spec.optim.weight_decay,
                parametrization=p.as_dict(),
                exact=dict(max_loss_diff=worst["exact"][0], max_w1_diff=worst["exact"][1]),
                naive=dict(max_loss_diff=worst["naive"][0], max_w1_diff=worst["naive"][1]),
                lr_only=dict(max_loss_diff=worst["lr_only"][0], max_w1_diff=worst["lr_only"][1]),
                float32_rounding=None if ref is None else
                dict(max_loss_diff=worst["rounding"][0], max_w1_diff=worst["rounding"][1]))
