"""The numerical proof of :mod:`scalelab._equivalence`'s rules: train model A, its exact
reparametrization B and the naive B side by side in one stacked group and compare them
step by step. It sits above the engine (the rules themselves sit below it)."""

from __future__ import annotations

import math

from ._equivalence import parametrization
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


def check_equivalence(c: float, optimizer: str, steps: int = 300, data_dir: str | None = None, **kw) -> dict:
    """Train A, B and naive B on the same batches for ``steps`` steps in one stacked group
    and compare them step by step: the largest |loss_A − loss_B| over steps and the largest
    |c·W1_B − W1_A| over steps and entries, for the exact and the naive B. Diverged or
    non-finite differences are reported as inf."""
    import torch

    from ._spec import expand
    from .engine import StackedGroup

    p = parametrization(c, optimizer)  # validates c and the optimizer before any data is loaded
    spec = equivalence_spec(c, optimizer, data_dir=data_dir, **kw)
    trials = expand(spec)
    g = StackedGroup(trials, data_dir)
    W1 = g.weighted[0].weight
    # The commenter's fix in seed 001, "scale the learning rate like the input": first-layer
    # lr × 1/c and nothing else (SGD: lr/c instead of lr/c²; Adam: eps left as it was).
    if family_of(optimizer).name == "adam":
        g.scale_hyperparameter("eps", W1, 3, divide=c)
        g.scale_hyperparameter("wd", W1, 3, divide=c)
    else:
        g.scale_hyperparameter("lr", W1, 3, multiply=c)
        g.scale_hyperparameter("wd", W1, 3, divide=c)
    worst = {"exact": [0.0, 0.0], "naive": [0.0, 0.0], "lr_only": [0.0, 0.0], "rounding": [0.0, 0.0]}
    # In float32 rounding alone makes two runs drift apart (SGD near its stability edge
    # amplifies it quickly). The yardstick: A itself in float32 against A in float64.
    ref = None
    if spec.train.dtype == "float32":
        ref = StackedGroup(expand(spec.model_copy(update={"train": spec.train.model_copy(
            update={"dtype": "float64"})}))[:1], data_dir)

    def record(name, d_loss, d_w):
        for i, d in enumerate((d_loss, d_w)):
            worst[name][i] = math.inf if not math.isfinite(d) else max(worst[name][i], d)

    def update(name, m, loss):
        record(name, abs(float(loss[m]) - float(loss[0])), float((g.params[W1][m] * c - g.params[W1][0]).abs().max()))

    step = 0
    while step < steps:
        perm = g.permutations()
        for s in range(g.steps_per_epoch):
            if step >= steps:
                break
            loss, _, _ = g.train_step(perm[:, s * g.batch_size: (s + 1) * g.batch_size])
            if ref is not None:
                loss64, _, _ = ref.train_step(perm[:1, s * g.batch_size: (s + 1) * g.batch_size])
                record("rounding", abs(float(loss[0]) - float(loss64[0])),
                       float((g.params[W1][0].detach().double() - ref.params[W1][0].detach()).abs().max()))
            with torch.no_grad():
                update("exact", 1, loss)
                update("naive", 2, loss)
                update("lr_only", 3, loss)
            step += 1
    return dict(c=c, optimizer=optimizer, steps=steps, dtype=spec.train.dtype, eps_mode=spec.optim.eps_mode,
                lr=spec.optim.lr, l2=spec.optim.l2, weight_decay=spec.optim.weight_decay,
                parametrization=p.as_dict(),
                exact=dict(max_loss_diff=worst["exact"][0], max_w1_diff=worst["exact"][1]),
                naive=dict(max_loss_diff=worst["naive"][0], max_w1_diff=worst["naive"][1]),
                lr_only=dict(max_loss_diff=worst["lr_only"][0], max_w1_diff=worst["lr_only"][1]),
                float32_rounding=None if ref is None else
                dict(max_loss_diff=worst["rounding"][0], max_w1_diff=worst["rounding"][1]))
