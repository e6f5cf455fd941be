from __future__ import annotations

import torch

from ._base import Probe


class Hessian(Probe):
    """Curvature: the eigenvalue of largest magnitude of each model's loss Hessian (all
    parameters) on a fixed batch, by power iteration with Hessian-vector products.

    The group's loss is a sum of per-model losses, each depending only on its own
    parameters, so the stacked Hessian is block diagonal by model: one HVP of the summed
    loss gives every model's HVP, and all models iterate at once. The start vector comes
    from a fixed generator (never from a training stream)."""

    name = "hessian"
    TOP_EIGENVALUE = "top_eigenvalue"
    quantities = (TOP_EIGENVALUE,)
    cost = 10

    def __init__(self, batch: int = 256, iters: int = 20):
        self.batch, self.iters = batch, iters

    def compute(self, ctx):
        return self._compute(ctx)

    def _compute(self, ctx):
        view = ctx.view
        x, y = ctx.probe_batch(self.batch)
        params = list(view.params.values())
        with torch.enable_grad():
            loss, _ = view.objective(view.params, x, y)
            grads = torch.autograd.grad(loss.sum(), params, create_graph=True)
        gen = torch.Generator(device="cpu").manual_seed(0)
        v = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p) for p in params]

        def per_model_dot(a, b):
            return sum((ai * bi).sum(dim=(1, 2)) for ai, bi in zip(a, b))

        def normalize(v):
            n = per_model_dot(v, v).sqrt().clamp_min(1e-30).view(-1, 1, 1)
            return [vi / n for vi in v]

        v = normalize(v)
        lam = torch.zeros(view.M, dtype=params[0].dtype, device=params[0].device)
        for i in range(self.iters):
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=i < self.iters - 1)
            lam = per_model_dot(v, hv)                  # Rayleigh quotient (v has unit norm)
            v = normalize([h.detach() for h in hv])
        return {self.TOP_EIGENVALUE: lam.detach()}
