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
