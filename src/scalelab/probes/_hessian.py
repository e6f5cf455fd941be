from __future__ import annotations

import torch

from . import _records as records
from ._base import Probe


class Hessian(records.Hessian, Probe):
    """Curvature: the largest and the smallest (most negative) eigenvalue of each model's
    loss Hessian (all parameters) on a fixed batch, by power iteration with Hessian-vector
    products, shifted for the second end of the spectrum.

    Plain power iteration converges to the eigenvalue of largest *magnitude*, λ_dom, which
    may be negative (raw regression targets make the Hessian indefinite). A second power
    iteration on H − λ_dom·I (every eigenvalue moves by −λ_dom, so the spectrum's other end
    becomes the largest in magnitude) finds the other extreme: λ_max and λ_min are reported
    separately, and a negative value is never called the top one.

    The group's loss is a sum of per-model losses, each depending only on its own
    parameters, so the stacked Hessian is block diagonal by model: one HVP of the summed
    loss gives every model's HVP, and all models iterate at once. The start vector comes
    from a fixed generator (never from a training stream)."""

    cost = 20

    def __init__(self, batch: int = 256, iters: int = 20):
        self.batch, self.iters = batch, iters

    def compute(self, ctx):
        return self._compute(ctx)

    def _compute(self, ctx):
        view = ctx.view
        x, y = ctx.probe_batch(self.batch)
        params = {k: p.detach().requires_grad_() for k, p in view.params.items()}
        plist = list(params.values())
        with torch.enable_grad():
            loss, _ = view.objective(params, x, y)
            grads = torch.autograd.grad(loss.sum(), plist, create_graph=True)

        def hvp(v):
            return [h.detach() for h in torch.autograd.grad(grads, plist, grad_outputs=v, retain_graph=True)]

        hi, lo = extreme_eigenvalues(hvp, [p.detach() for p in plist], self.iters)
        return {self.MAX_EIGENVALUE: hi.detach(), self.MIN_EIGENVALUE: lo.detach()}


def extreme_eigenvalues(apply, like, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(largest, smallest) eigenvalue of each model's symmetric operator ``apply``: power
    iteration finds the one of largest magnitude, λ_dom; power iteration on the shifted
    operator A − λ_dom·I (whose largest-magnitude eigenvalue is the spectrum's other end
    minus λ_dom) finds the other. Each is a Rayleigh quotient, so it lies inside the
    spectrum and approaches its end from within."""
    lam_dom = power_iteration(apply, like, iters)
    lam_other = power_iteration(lambda v: [h - per_model(lam_dom, vi) * vi for h, vi in zip(apply(v), v)],
                                like, iters) + lam_dom
    return torch.maximum(lam_dom, lam_other), torch.minimum(lam_dom, lam_other)


def per_model(x, like):
    """(M,) values shaped to broadcast over a (M, ...) tensor."""
    return x.view(-1, *([1] * (like.dim() - 1)))


def per_model_dot(a, b):
    """Σ over tensors of the per-model inner product: (M,)."""
    return sum((ai * bi).flatten(1).sum(1) for ai, bi in zip(a, b))


def power_iteration(apply, like, iters: int, seed: int = 0) -> torch.Tensor:
    """The eigenvalue of largest magnitude of the symmetric per-model operator ``apply``
    (a list of (M, ...) tensors shaped like ``like`` to the same), by ``iters`` power
    iterations from a fixed random start: its Rayleigh quotient, (M,)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p) for p in like]

    def normalize(v):
        n = per_model_dot(v, v).sqrt().clamp_min(1e-30)
        return [vi / per_model(n, vi) for vi in v]

    v = normalize(v)
    lam = torch.zeros(like[0].shape[0], dtype=like[0].dtype, device=like[0].device)
    for _ in range(iters):
        hv = apply(v)
        lam = per_model_dot(v, hv)                  # Rayleigh quotient (v has unit norm)
        v = normalize(hv)
    return lam
