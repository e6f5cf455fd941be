"""When is scaling the inputs a no-op? The exact reparametrization (its numerical proof is in _equivalence_check).

Model A sees inputs x. Model B sees x' = c·x (c per feature, or one number) and starts
from first-layer kernel W1' = W1 / c, everything else equal. Then x'·W1' = x·W1: both
compute the same function at step 0. Training keeps them identical iff every step keeps
W1' = W1 / c. The first layer's gradient in B is

    ∂L/∂W1' = x'ᵀ δ = c · ∂L/∂W1            (δ: the gradient at the layer's output, equal in A and B)

while every other gradient (biases, later layers) is unchanged. So B's first-kernel
step must be A's step divided by c although its gradient is c times larger:

* SGD and momentum (the buffer is a sum of gradients, c times larger):
  ΔW1' = −lr'·c·g  must equal  −lr·g / c   ⇒  lr' = lr / c².   (lr / c leaves the step c times too big.)
* Adam: m' = c·m, v' = c²·v, so m'/(√v' + eps') = c·m / (c·√v + eps'), equal to m/(√v + eps)
  iff eps' = c·eps (both the torch and the Keras placement of eps, since sqrt of the
  bias-corrected v scales the same way). The direction is then the same as A's, so
  lr' = lr / c. With lr / c alone, eps weighs c times less against √v' and the step of
  rarely-lit pixels (tiny v) differs.
* L2 penalty λ‖W1‖² in the loss: λ'‖W1/c‖² = λ‖W1‖² ⇒ λ' = λ·c² (the loss is unchanged,
  so this holds for any optimizer).
* Decoupled weight decay, the step −lr·wd·W: SGD/momentum lr'·wd'·W1/c = lr·wd·W1/c with
  lr' = lr/c² ⇒ wd' = wd·c²; Adam/AdamW lr' = lr/c ⇒ wd' = wd·c.
* Biases and later layers: gradients unchanged, hyperparameters unchanged.

An input *shift* (x' = x·s + o) folds into the first layer at step 0 (W1' = W1/s, b1' =
b1 − (o/s)·W1), so outputs are identical there. It is not preserved by training: in B
the kernel's gradient picks up oᵀ·∂L/∂b1, which no per-parameter hyperparameter can undo.
:func:`fold_affine` does the step-0 fold; :func:`parametrization` gives the training rules
for the scale part.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .optim._families import family_of


@dataclass(frozen=True)
class Parametrization:
    """First-layer changes that make inputs ×c train exactly like the original inputs.

    Every field multiplies the original first-layer *kernel* hyperparameter; biases and
    other layers keep theirs.
    """

    c: float
    optimizer: str
    init_scale: float     # multiplies the first kernel's initial values: 1/c
    lr_mult: float
    eps_mult: float       # Adam only (1 for SGD / momentum, which have no eps)
    l2_mult: float
    wd_mult: float

    def as_dict(self) -> dict:
        return asdict(self)


def parametrization(c: float, optimizer: str) -> Parametrization:
    """The rules above for inputs multiplied by ``c`` (> 0) under ``optimizer``
    (sgd, momentum, adam or adamw)."""
    if not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
        raise ValueError(f"input scale c = {c!r}: must be a finite number > 0")
    r = family_of(optimizer).input_scale(c)  # the family's rule: the bullets above
    return Parametrization(c, optimizer, 1 / c, r.lr, r.eps, r.l2, r.wd)


def input_multiplier(spec: dict) -> float | None:
    """c of a resolved trial spec with ``input.equivalent_to`` set: its input factor over the
    factor it should train like; None when the spec asks for no equivalence."""
    inp = spec["input"]
    if inp.get("equivalent_to") is None:
        return None
    own = inp["scale"] if inp["transform"] == "scale" else 1.0
    return own / inp["equivalent_to"]


def trial_parametrization(spec: dict) -> Parametrization | None:
    c = input_multiplier(spec)
    return None if c is None else parametrization(c, spec["optim"]["name"])


def fold_affine(W: np.ndarray, b: np.ndarray, scale_from, offset_from, scale_to, offset_to):
    """First-layer (W, b) for inputs transformed by ``to`` that compute what (W, b) computes
    on inputs transformed by ``from``, where a transform maps raw x to x·scale + offset.

    W of shape (n_features, n_units); b of shape (n_units,) or (1, n_units); scales and
    offsets of shape (n_features,) or scalars. Returns (W', b') of the same shapes.
    Exact at step 0 for any affine change; see the module docstring for training.
    """
    D = W.shape[0]
    s_f, o_f, s_t, o_t = (np.broadcast_to(np.asarray(a, dtype=np.float64), (D,)) for a in
                          (scale_from, offset_from, scale_to, offset_to))
    if np.any(s_t == 0):
        raise ValueError("the target transform has a zero scale for some feature: its inputs cannot be mapped back")
    # x_from = x·s_f + o_f = (x_to − o_t)·(s_f/s_t) + o_f = x_to·r + q
    r = s_f / s_t
    q = o_f - o_t * r
    return r[:, None] * W, b + q @ W
