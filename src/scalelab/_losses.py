"""Per-sample losses over stacked outputs.

Every function takes outputs of shape (M, batch, n_out) and returns per-sample losses
of shape (M, batch); the engine averages over the batch itself.
"""

from __future__ import annotations

import torch


def crossentropy_clipped_probs(logits: torch.Tensor, y: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    """Keras's sparse categorical cross-entropy on a softmax *output*.

    As Keras does (torch and JAX backends, old tf.keras): softmax, renormalise, clip the
    probability to [clip, 1 - clip], then -log. Where the true-class probability is
    clipped, the gradient is exactly zero: that sample stops teaching the model.

    logits : (M, batch, n_classes); y : (M, batch) int64; clip : (M, 1) per model.
    """
    p = torch.softmax(logits, dim=-1)
    p_true = p.gather(-1, y.unsqueeze(-1)).squeeze(-1) / p.sum(-1)
    p_true = torch.clamp(p_true, min=clip, max=1.0 - clip)
    return -torch.log(p_true)


def crossentropy_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the logits (log-softmax), what PyTorch and Keras-on-TensorFlow do."""
    return -torch.log_softmax(logits, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)


def mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over outputs; y of shape (M, batch, n_out)."""
    return (pred - y).pow(2).mean(-1)


def mae(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred - y).abs().mean(-1)


def per_sample_loss(name: str, from_logits: bool, out: torch.Tensor, y: torch.Tensor,
                    clip: torch.Tensor | None = None) -> torch.Tensor:
    if name == "crossentropy":
        if from_logits:
            return crossentropy_logits(out, y)
        return crossentropy_clipped_probs(out, y, clip)
    if name == "mse":
        return mse(out, y)
    if name == "mae":
        return mae(out, y)
    raise ValueError(f"unknown loss {name!r}")


def per_sample_loss_and_grad(name: str, from_logits: bool, out: torch.Tensor, y: torch.Tensor,
                             clip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample losses (M, b) and the gradient of their batch mean w.r.t. ``out`` (M, b, n_out),
    in closed form (what autograd computes through the same formulas)."""
    b = out.shape[1]
    if name == "crossentropy":
        onehot = torch.zeros_like(out).scatter_(-1, y.unsqueeze(-1), 1.0)
        if from_logits:
            logp = torch.log_softmax(out, dim=-1)
            per = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
            return per, (logp.exp() - onehot) / b
        p = torch.softmax(out, dim=-1)
        s = p.sum(-1, keepdim=True)
        q = p.gather(-1, y.unsqueeze(-1)) / s                       # (M, b, 1), renormalised as Keras does
        per = -torch.log(torch.clamp(q, min=clip.unsqueeze(-1), max=1.0 - clip.unsqueeze(-1))).squeeze(-1)
        # d(-log q)/dz = p/S - onehot (S = sum p); zero where the clip is active (clamp passes
        # the gradient on its boundaries, as torch.clamp's backward does)
        live = (q >= clip.unsqueeze(-1)) & (q <= 1.0 - clip.unsqueeze(-1))
        return per, (p / s - onehot) * live.to(out.dtype) / b
    k = out.shape[-1]
    diff = out - y
    if name == "mse":
        return diff.pow(2).mean(-1), diff * (2.0 / (k * b))
    if name == "mae":
        return diff.abs().mean(-1), diff.sign() / (k * b)
    raise ValueError(f"unknown loss {name!r}")


# ----------------------------------------------------------------------------- registered losses

# Losses beyond the three above, each a factory ``factory(group) -> loss`` where ``loss.per_sample(out, y)``
# gives per-sample losses (M, b) of outputs (M, b, n_out) and targets in training units; a loss may
# also build the model its outputs need (``build_model(n_in)``, for ``model.kind`` of its family) and
# evaluate held-out data itself (``evaluate(X, y)`` -> metrics of shape (M,), ``loss`` among them).
LOSSES: dict = {}
_PLUGINS = ("scalelab.trajectories._heads",)   # modules that register losses when imported


def register_loss(name: str):
    """Decorator: make ``factory`` the loss ``loss.name = name`` selects."""
    def add(factory):
        LOSSES[name] = factory
        return factory
    return add


def make_loss(name: str, group):
    """The registered loss ``name`` for a stacked group; None for the built-in ones."""
    if name in ("crossentropy", "mse", "mae"):
        return None
    import importlib

    for mod in _PLUGINS:
        importlib.import_module(mod)
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: crossentropy, mse, mae, {', '.join(sorted(LOSSES))}")
    return LOSSES[name](group)
