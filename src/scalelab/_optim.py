"""Optimizers as pure ``(init, update)`` pairs over stacked parameters, optax style.

Parameters, gradients and updates are dicts ``name -> tensor`` whose leading axis is
the model axis. Hyperparameters are per parameter: a float, or a tensor that broadcasts
against the parameter (shape (M, 1, 1) for a per-model, per-layer value). Named
optimizers are chains of small transforms; ``update`` returns new updates and a new
state and never mutates its inputs.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

Params = dict[str, torch.Tensor]
HP = dict[str, "torch.Tensor | float"] | float


def _hp(h: HP, name: str):
    return h[name] if isinstance(h, dict) else h


class Transform(NamedTuple):
    init: Callable[[Params], tuple]
    update: Callable[[Params, tuple, Params], tuple[Params, tuple]]


class EmptyState(NamedTuple):
    pass


class AdamState(NamedTuple):
    count: torch.Tensor   # steps taken, a scalar int64 tensor
    mu: Params            # first moment
    nu: Params            # second moment (uncorrected)


class TraceState(NamedTuple):
    trace: Params


def adam_step_scalars(b1, b2, keras, t):
    """Per-model factors of Adam's step t: (c, a) with direction = c·m / (a·sqrt(v) + eps).

    torch semantics: m̂ / (sqrt(v̂) + eps) = (1/bc1)·m / (sqrt(v)/sqrt(bc2) + eps).
    Keras semantics: Keras adds eps to sqrt of the *uncorrected* v and bias-corrects the
    learning rate, lr·sqrt(bc2)/bc1 · m / (sqrt(v) + eps).
    ``keras`` is 1.0 for Keras semantics and 0.0 for torch; bc_i = 1 - b_i^t.
    """
    bc1 = 1 - b1 ** t
    bc2_sqrt = (1 - b2 ** t) ** 0.5
    c = (keras * bc2_sqrt + (1 - keras)) / bc1
    a = keras + (1 - keras) / bc2_sqrt
    return c, a


def scale_by_adam(b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0) -> Transform:
    """Adam's direction c·m / (a·sqrt(v) + eps), torch or Keras eps semantics
    (see :func:`adam_step_scalars`); ``keras_eps`` = 1 selects Keras's."""

    def init(params):
        zeros = {k: torch.zeros_like(p) for k, p in params.items()}
        return AdamState(torch.zeros((), dtype=torch.int64), zeros, {k: torch.zeros_like(p) for k, p in params.items()})

    def update(grads, state, params=None):
        t = state.count + 1
        mu, nu, out = {}, {}, {}
        for k, g in grads.items():
            b1k, b2k = _hp(b1, k), _hp(b2, k)
            mu[k] = state.mu[k] * b1k + g * (1 - b1k)
            nu[k] = state.nu[k] * b2k + g * g * (1 - b2k)
            # a float power: an int tensor exponent would give float32
            c, a = adam_step_scalars(b1k, b2k, _hp(keras_eps, k), t.to(g.dtype))
            out[k] = c * mu[k] / (a * nu[k].sqrt() + _hp(eps, k))
        return out, AdamState(t, mu, nu)

    return Transform(init, update)


def trace(momentum: HP = 0.9, nesterov: bool = False) -> Transform:
    """Heavy-ball momentum, torch semantics: buf = momentum·buf + g (nesterov: g + momentum·buf)."""

    def init(params):
        return TraceState({k: torch.zeros_like(p) for k, p in params.items()})

    def update(grads, state, params=None):
        new, out = {}, {}
        for k, g in grads.items():
            m = _hp(momentum, k)
            new[k] = state.trace[k] * m + g
            out[k] = g + m * new[k] if nesterov else new[k]
        return out, TraceState(new)

    return Transform(init, update)


def add_decayed_weights(weight_decay: HP = 0.0) -> Transform:
    """Add weight_decay·W to the update: after scale_by_lr, the decay step is lr·wd·W (decoupled)."""

    def init(params):
        return EmptyState()

    def update(updates, state, params):
        return {k: u + _hp(weight_decay, k) * params[k] for k, u in updates.items()}, state

    return Transform(init, update)


def scale_by_lr(lr: HP) -> Transform:
    """Multiply by -lr: the update to add to the parameters."""

    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        return {k: u * (-_hp(lr, k)) for k, u in updates.items()}, state

    return Transform(init, update)


def chain(*transforms: Transform) -> Transform:
    """Apply transforms in order; the state is the tuple of their states."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return Transform(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    return {k: p + updates[k] for k, p in params.items()}


# ----------------------------------------------------------------------------- named optimizers

def sgd(lr: HP) -> Transform:
    return chain(scale_by_lr(lr))


def momentum(lr: HP, momentum: HP = 0.9, nesterov: bool = False) -> Transform:
    return chain(trace(momentum, nesterov), scale_by_lr(lr))


def adam(lr: HP, b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0) -> Transform:
    return chain(scale_by_adam(b1, b2, eps, keras_eps), scale_by_lr(lr))


def adamw(lr: HP, b1: HP = 0.9, b2: HP = 0.999, eps: HP = 1e-8, keras_eps: HP = 0.0,
          weight_decay: HP = 0.0) -> Transform:
    return chain(scale_by_adam(b1, b2, eps, keras_eps), add_decayed_weights(weight_decay), scale_by_lr(lr))


def l2_penalty(params: Params, l2: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-model penalty sum_layers l2_layer · ||W_layer||² over kernels: shape (M,)."""
    total = None
    for name, coef in l2.items():
        term = coef.view(-1) * params[name].pow(2).sum(dim=(1, 2))
        total = term if total is None else total + term
    return total


# ----------------------------------------------------------------------------- fused in-place step
#
# The chains above are the reference: pure and easy to test. Training uses the same
# arithmetic in one in-place pass per parameter tensor (read p, g and the moments once,
# write them once), compiled by torch.compile into a single loop where that works. On a
# CPU the optimizer is memory-bound: the chain's ~15 full-size temporaries per step
# cost more than the matmuls. Tests check that this equals the chain.


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


class _Compiled:
    """``fn`` under torch.compile, one graph per shape. A study trains one group after
    another, each of its own shapes, through the same function: past dynamo's default of 8
    graphs per function the 9th group's step failed over to eager, 3.5x slower (measured).
    The call that compiles may therefore add a graph beyond that limit; later calls of the
    same group hit the graph it made."""

    GRAPHS_PER_FUNCTION = 4096

    def __init__(self, fn):
        # dynamic=False: the shapes never change within a group, and the guards check them
        # already, so the per-call size asserts are redundant (39 calls a step in the engine)
        self._fn = torch.compile(fn, dynamic=False, fullgraph=True, options={"size_asserts": False})
        self._warm = False

    def __call__(self, *args):
        if self._warm:
            return self._fn(*args)
        limit = self.GRAPHS_PER_FUNCTION
        with torch._dynamo.config.patch(recompile_limit=limit, accumulated_recompile_limit=limit):
            out = self._fn(*args)
        self._warm = True
        return out


def _compile(fn):
    try:
        return _Compiled(fn)
    except Exception:  # torch.compile unavailable on this platform/version
        return None


class FusedOptimizer:
    """The in-place training step of a stacked group's optimizer.

    ``hp`` maps a hyperparameter name to per-parameter tensors (M, 1, 1) as built by
    :func:`group_hyperparameters`. With ``compile`` the whole step goes through
    torch.compile as one graph; if compiling fails (no C++ compiler, an unsupported
    platform) the same kernels run eagerly, with the same results.
    """

    def __init__(self, family: str, params: Params, hp: dict, nesterov: bool = False, momentum: bool = True,
                 compile: bool = False):
        self.family, self.nesterov = family, nesterov
        self.names = list(params)
        self.t = 0
        lists = {k: [hp[k][n] for n in self.names] for k in hp}
        zeros = lambda: [torch.zeros_like(params[n]) for n in self.names]  # noqa: E731
        if family == "adam":
            self.m, self.v = zeros(), zeros()
            n0 = self.names[0]
            self._state = lambda: (self.m, self.v, lists["lr"], lists["b1"], lists["b2"], lists["eps"],  # noqa: E731
                                   lists["wd"], *adam_step_scalars(hp["b1"][n0], hp["b2"][n0], hp["keras"][n0],
                                                                   float(self.t)))
            kernel = adam_all
        elif momentum:
            self.buf = zeros()
            self._state = lambda: (self.buf, lists["lr"], lists["mom"], lists["wd"], nesterov)  # noqa: E731
            kernel = momentum_all
        else:
            self._state = lambda: (lists["lr"], lists["wd"])  # noqa: E731
            kernel = sgd_all
        self.kernel = kernel  # eager: kernel(params, grads, *next_step_args())
        self._kernel = (_compile(kernel) if compile else None) or kernel
        self.compiled = self._kernel is not kernel

    def next_step_args(self) -> tuple:
        """Advance the step counter and return the kernel's arguments after (params, grads):
        the optimizer state and this step's hyperparameters. For callers that run
        :attr:`kernel` inside a larger compiled graph (the engine's fused step)."""
        self.t += 1
        return self._state()

    @torch.no_grad()
    def step(self, params: Params, grads: Params) -> None:
        ps, gs = [params[n] for n in self.names], [grads[n] for n in self.names]
        args = self.next_step_args()
        try:
            self._kernel(ps, gs, *args)
        except Exception as e:  # a compiler failure surfaces on the first call
            if not self.compiled:
                raise
            import warnings

            warnings.warn(f"torch.compile of the optimizer step failed ({type(e).__name__}: {e}); running eagerly")
            self._kernel, self.compiled = self.kernel, False
            self._kernel(ps, gs, *args)


def group_hyperparameters(optims: list[dict], param_layers: dict[str, tuple[int, bool]], dtype, device) -> dict:
    """Per-parameter hyperparameter tensors of shape (M, 1, 1) from each model's ``optim`` section.
    A parameter whose layer index is None (BatchNorm's scale and shift) takes no per-layer multiplier."""
    one = lambda mults, l: 1.0 if l is None else mults[l]  # noqa: E731

    def per_param(fn) -> dict[str, torch.Tensor]:
        return {name: torch.tensor([fn(o, layer) for o in optims], dtype=dtype, device=device).view(-1, 1, 1)
                for name, (layer, _) in param_layers.items()}

    return dict(
        lr=per_param(lambda o, l: o["lr"] * one(o["lr_mult"], l)),
        wd=per_param(lambda o, l: o["weight_decay"] * one(o["wd_mult"], l)),
        b1=per_param(lambda o, l: o["beta1"]),
        b2=per_param(lambda o, l: o["beta2"]),
        eps=per_param(lambda o, l: o["eps"] * one(o["eps_mult"], l)),
        keras=per_param(lambda o, l: 1.0 if o["eps_mode"] == "keras" else 0.0),
        mom=per_param(lambda o, l: o["momentum"] if o["name"] == "momentum" else 0.0),
    )
