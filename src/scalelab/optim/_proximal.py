"""L1 on kernels by a proximal step: after each optimizer update,

    W ← sign(W) · max(|W| − lr · λ₁, 0)        (soft thresholding, elementwise)

the proximal operator of lr·λ₁·‖W‖₁. With plain SGD this is proximal gradient descent
(ISTA) on mean loss + λ₁·‖W‖₁, which converges to that objective's minimum (checked against
scikit-learn's L1 logistic regression in tests/test_evaluation.py); with Adam the threshold
is the same lr·λ₁ (not preconditioned), the usual "proximal Adam" simplification. Unlike a
subgradient step, weights reach exactly zero. Biases are not penalized, as in Keras's
``kernel_regularizer``; the reported training loss leaves the L1 term out."""

from __future__ import annotations

import torch


def l1_coefficients(optims: list, model, dtype, device) -> dict | None:
    """Per-kernel L1 coefficients (M, 1, 1), or None when no model has one."""
    if not any(o.l1 > 0 for o in optims):
        return None
    coef = torch.tensor([o.l1 for o in optims], dtype=dtype, device=device).view(-1, 1, 1)
    return {layer.weight: coef for layer in model.weighted}


@torch.no_grad()
def l1_prox(params: dict, l1: dict, lr: dict) -> None:
    """Soft-threshold each penalized kernel in place by its models' lr · λ₁."""
    for name, coef in l1.items():
        p = params[name]
        t = lr[name] * coef
        p.copy_(p.sign() * (p.abs() - t).clamp_min(0))
