"""The layer protocol: a layer is written once, as its single-model computation.

Every parameter of a stacked group has a leading model axis M; one model alone is M = 1.
A layer declares its parameters (per-model shapes), draws one model's initial values from
that model's own RNG, and computes its output for ONE model in :meth:`Layer.forward_one`.
:meth:`Layer.forward` runs it over all M models at once; by default through
``torch.func.vmap``, which turns the single-model ops into batched ones, so a new layer
needs nothing else and autograd supplies its gradients. The built-in layers override
``forward`` with hand-batched ops where that is faster or must keep today's exact
arithmetic (a batched matmul, a grouped convolution); tests check each override against
``vmap(forward_one)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch


@dataclass(frozen=True)
class Param:
    """One parameter of a layer: its name in the group's parameter dict, its per-model shape,
    whether it is a kernel (L2 and weight decay apply; 3-D after stacking) and the index of
    the weighted layer whose per-layer multipliers (lr_mult, …) apply, None for none."""

    name: str
    shape: tuple[int, ...]
    kernel: bool = False
    mult_index: int | None = None
    trainable: bool = True        # False: a frozen parameter (no gradient, no optimizer step)
    rows: bool = False            # a lookup table (M, V, d): row-sparse updates may touch only the rows used


@dataclass
class Pass:
    """What one forward pass shares across layers: whether it trains (BatchNorm uses and
    updates batch statistics), the explicit state (BatchNorm's running averages, keyed by
    buffer name, updated in place when training) and ``taps`` (probes read named
    intermediate tensors; None: record nothing). Generative layers also read ``targets``
    (M, batch, n_targets) in training units, when the pass has them (a conditional VAE's
    posterior), and draw their randomness from ``noise(shape)`` → (M, *shape) standard
    normals, reproducible per model and step."""

    M: int
    training: bool = False
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    taps: dict | None = None
    # token models: which steps hold a real token (M, batch, steps), set by the embedding layer
    # for the sequence layers after it; and, for row-sparse updates, a table's gathered rows
    # (table name -> (rows (U, d), ids into them (M, batch, steps)))
    mask: torch.Tensor | None = None
    rows: dict | None = None
    targets: torch.Tensor | None = None
    noise: Any = None


class Layer:
    """One layer kind. Subclasses set ``kind``, implement :meth:`params` and
    :meth:`forward_one`, and, when they have parameters, :meth:`init`."""

    kind: ClassVar[str]
    weighted: ClassVar[bool] = False     # has a kernel and a bias (counts for per-layer multipliers)
    # The named tensors the layer hands probes through ``Pass.taps``, each suffixed with its
    # index: "pre" (pre-activations z), "act" (activations h). Probes read taps, never kinds.
    taps: ClassVar[tuple[str, ...]] = ()

    def params(self) -> list[Param]:
        return []

    def buffers(self) -> dict[str, tuple[tuple[int, ...], float]]:
        """Per-model state that is not trained: name -> (per-model shape, initial value)."""
        return {}

    def init(self, rng: np.random.Generator, scheme: str, scale: float, bias_init: str) -> dict[str, np.ndarray]:
        """One model's initial parameters (float64), drawn from ``rng`` in a fixed order."""
        return {}

    def forward_one(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """ONE model: ``params`` without the model axis, ``x`` of shape (batch, ...)."""
        raise NotImplementedError

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, p: Pass) -> torch.Tensor:
        """All M models: ``x`` of shape (M, batch, ...). The default stacks
        :meth:`forward_one` with ``torch.func.vmap`` over the model axis."""
        own = {q.name: params[q.name] for q in self.params()}
        return torch.func.vmap(self.forward_one)(own, x)

    @classmethod
    def from_config(cls, index: int, n_in: int, cfg: dict[str, Any]) -> "Layer":
        """The layer a spec's ``model.layers`` entry describes (``cfg`` without ``kind``), for
        inputs of width ``n_in``; ``index`` is its position among layers of its kind."""
        return cls(index, n_in, **cfg)

    def n_out(self, n_in: int) -> int:
        """Output width for inputs of width ``n_in`` (flat layers)."""
        return n_in
