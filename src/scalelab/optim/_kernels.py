"""The fused in-place optimizer steps, one ``*_all`` kernel per family.

The chains (``_chains.py``) are the reference: pure and easy to test. Training uses the
same operations in one in-place pass per parameter tensor (read p, g and the moments
once, write them once), compiled by torch.compile into a single loop where that works
(compiled, float32 rounds differently from eager: tests compare within tolerances, and
each trial records which ran).
On a CPU the optimizer is memory-bound: the chain's ~15 full-size temporaries per step
cost more than the matmuls. Tests check that every kernel equals its family's chain.

A kernel is called ``kernel(params, grads, *moments, *hyperparameters, *step_scalars)``,
each of the first three a list over the group's parameter tensors (see ``_families``).
"""

from __future__ import annotations


def adam_kernel(p, g, m, v, lr, b1, b2, eps, wd, c, a):
    # c, a: this step's per-model factors (adam_step_scalars), computed once per step
    # outside the kernel so that no power is evaluated per element.
    m_new = m * b1 + g * (1 - b1)
    v_new = v * b2 + g * g * (1 - b2)
    u = c * m_new / (a * v_new.sqrt() + eps)
    u = u + wd * p
    p.copy_(p + u * (-lr))
    m.copy_(m_new)
    v.copy_(v_new)


def adam_all(ps, gs, ms, vs, lrs, b1s, b2s, epss, wds, c, a):
    """adam_kernel over every parameter of the group: one call (one compiled graph) per
    step. c, a come in computed: inside the graph the compiler would inline the powers
    into the per-element loop."""
    for i in range(len(ps)):
        adam_kernel(ps[i], gs[i], ms[i], vs[i], lrs[i], b1s[i], b2s[i], epss[i], wds[i], c, a)


def momentum_all(ps, gs, bufs, lrs, moms, wds, nesterov: bool):
    for i in range(len(ps)):
        momentum_kernel(ps[i], gs[i], bufs[i], lrs[i], moms[i], wds[i], nesterov)


def sgd_all(ps, gs, lrs, wds):
    for i in range(len(ps)):
        sgd_kernel(ps[i], gs[i], lrs[i], wds[i])


def momentum_kernel(p, g, buf, lr, mom, wd, nesterov: bool):
    buf_new = buf * mom + g
    u = g + mom * buf_new if nesterov else buf_new
    u = u + wd * p
    p.copy_(p + u * (-lr))
    buf.copy_(buf_new)


def sgd_kernel(p, g, lr, wd):
    p.copy_(p + (g + wd * p) * (-lr))
