"""The engine's read-only :class:`~scalelab.engine.StepView`, offered over one user model.

The probes in :mod:`scalelab.probes` read a training group only through the step view;
:class:`AttachedView` offers the same API over a model scalelab did not build (a PyTorch
``nn.Module`` or a Keras 3 model), with a model axis M = 1, so the very same probe
classes and :class:`~scalelab.probes.ProbeSet` compute the same quantities. What differs
between frameworks lives in an *adapter* (``_torch.TorchAdapter``, ``_keras_adapter.KerasAdapter``):
its parameters and gradients in the engine's layout, a forward pass that fills the taps,
the user's own per-sample loss and the optimizer's state.

Layout, as the engine's: every parameter is 3-D with the model axis first; a dense kernel
is (1, fan_in, fan_out), a convolution kernel (1, fan_in·k·k, c_out), a bias (1, 1, n) and
any other parameter (1, 1, numel) or (1, rows, cols). Taps are (1, samples, units): a
convolution's channels are its units (positions count as samples), so dead units and
activation sizes read per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch


@dataclass(frozen=True)
class LayerInfo:
    """Metadata of one layer of the user's model, as the engine's layers offer it: ``kind``
    (dense, conv, activation or the framework's class name), ``index`` (position among the
    weighted layers, the ``{layer}`` of probe quantities), the parameter names of its
    kernel and bias, and the user's own name for it."""

    kind: str
    index: int
    name: str
    weight: str | None = None
    bias: str | None = None

    @property
    def weighted(self) -> bool:
        return self.weight is not None and self.bias is not None

    @property
    def taps(self) -> tuple[str, ...]:
        """What the adapter taps of this layer, as the engine's layers declare it (``pre``: a
        dense layer's output, ``act``: an activation's)."""
        return {"dense": ("pre",), "activation": ("act",)}.get(self.kind, ())


def flat_tap(t: torch.Tensor, channels_first: bool) -> torch.Tensor | None:
    """A layer's output as (1, samples, units); None when it is not one tensor."""
    if not isinstance(t, torch.Tensor) and len(getattr(t, "shape", ())) >= 2:
        # Keras on TensorFlow or JAX: stays that backend's array (maybe traced); its adapter copies it out
        from keras import ops

        t = ops.moveaxis(t, 1, -1) if len(t.shape) > 2 and channels_first else t
        return ops.reshape(t, (1, -1, t.shape[-1]))
    if not isinstance(t, torch.Tensor) or t.dim() < 2:
        return None
    if t.dim() > 2 and channels_first:
        t = t.movedim(1, -1)
    return t.reshape(1, -1, t.shape[-1])


def pick(data, rows: torch.Tensor) -> torch.Tensor:
    """Rows of a tensor or of an array (only those rows are converted: a training set stays as it is);
    a pandas DataFrame or Series by position (``data[rows]`` would index its columns)."""
    if isinstance(data, torch.Tensor):
        return data[rows.to(data.device)]
    r = rows.cpu().numpy()
    a = np.asarray(data.iloc[r]) if hasattr(data, "iloc") else np.asarray(data[r])
    if a.dtype == bool:
        a = a.astype(np.float32)
    return torch.as_tensor(a)


def to_numpy(t) -> np.ndarray:
    """A tensor, array, DataFrame or Series (or a Keras tensor on any backend) as a numpy array."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    if hasattr(t, "to_numpy"):
        return t.to_numpy()
    if hasattr(t, "numpy") and not isinstance(t, np.ndarray):
        return np.asarray(t.numpy())
    return np.asarray(t)


def class_index(y: torch.Tensor) -> torch.Tensor:
    """Class labels as one index per row: (n,), (n, 1) and (n, k, 1) as they are, one-hot rows by their argmax."""
    while y.dim() > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.dim() == 2 and y.shape[-1] > 1 and y.is_floating_point():
        y = y.argmax(-1)
    return y.reshape(-1).long()


class AttachedView:
    """What probes see of a user's model (M = 1): the same properties and methods as the
    engine's :class:`~scalelab.engine.StepView`; see there for their meaning."""

    M = 1
    flat_taps = True   # every tap is (1, samples, units), also for convolutions (see Activations)

    def __init__(self, adapter, probe_x, probe_y, total_steps: int, steps_per_epoch: int):
        self.a = adapter
        self._x, self._y = probe_x, probe_y   # the rows probes may pick from: tensors or arrays (converted per pick)
        self._total, self._spe = total_steps, steps_per_epoch
        self._records: list[list[tuple]] = [[]]
        self._params = None
        self.step = 0
        self.batch: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None

    def refresh(self) -> None:
        """Forget the handed-out parameters: the model's parameters changed."""
        self._params = None

    # -- the group

    trials: list = []

    @property
    def device(self) -> torch.device:
        return self.a.device

    @property
    def dtype(self) -> torch.dtype:
        return self.a.dtype

    @property
    def n_train(self) -> int:
        """The training samples the probes can look at (the watcher's fixed probe rows)."""
        return self._x.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        return self._spe

    @property
    def total_steps(self) -> int:
        return self._total

    @property
    def classification(self) -> bool:
        return self.a.classification

    @property
    def clip(self) -> torch.Tensor:
        return torch.tensor([[self.a.clip]], dtype=self.dtype, device=self.device)

    # -- layers and parameters

    @property
    def layers(self) -> list[LayerInfo]:
        return self.a.layers

    @property
    def weighted(self) -> list[LayerInfo]:
        return [layer for layer in self.a.layers if layer.weighted]

    @property
    def params(self) -> MappingProxyType:
        """The current parameters in the engine's layout: views of the model's own storage,
        detached, each a leaf that requires grad (so curvature can differentiate through
        :meth:`objective`); the same objects until :meth:`refresh`."""
        if self._params is None:
            self._params = {k: v.detach().requires_grad_(True) for k, v in self.a.params().items()}
        return MappingProxyType(self._params)

    @property
    def grads(self) -> MappingProxyType:
        return MappingProxyType(self.a.grads())

    @property
    def optimizer_family(self) -> str:
        return self.a.optimizer_family

    @property
    def optimizer_step(self) -> int:
        return self.a.optimizer_step

    def optimizer_state(self, name: str) -> dict[str, torch.Tensor]:
        return self.a.optimizer_state(name)

    def hyperparameter(self, name: str) -> MappingProxyType:
        return MappingProxyType(self.a.hyperparameter(name))

    # -- computing on the model

    def raw_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of the probe data as the user gave them (their dtype and encoding)."""
        return pick(self._x, rows), pick(self._y, rows)

    _rows = None   # the last rows asked for, and their tensors: the probe batch, the same at every probed step

    def training_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hit = self._rows
        if hit is not None and hit[0] is rows and hit[1] == rows._version:
            return hit[2]
        out = self._training_rows(rows)
        self._rows = (rows, rows._version, out)
        return out

    def _training_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = pick(self._x, rows).to(self.device), pick(self._y, rows).to(self.device)
        if not getattr(self.a, "token_inputs", False):
            x = x.to(self.dtype)   # raw uint8 pixels too: the model computes in its own dtype
        y = class_index(y) if self.classification else y.to(self.dtype)
        if y.dim() > 2:   # per-timestep targets (n, k, d): rows as the forward flattens its output
            y = y.reshape(-1, y.shape[-1])
        return x.unsqueeze(0), y.unsqueeze(0)

    def forward(self, params, x, taps: dict | None = None) -> torch.Tensor:
        return self.a.forward(params, x[0], taps).unsqueeze(0)

    def loss_per_sample(self, out, y) -> torch.Tensor:
        return self.a.loss_per_sample(out[0], y[0]).unsqueeze(0)

    def per_sample(self, params, x, y, taps: dict | None = None):
        if hasattr(self.a, "per_sample"):   # Keras on TensorFlow or JAX: the logits and the losses in one call
            per, out = self.a.per_sample(params, x[0], y[0], taps)
            return per.unsqueeze(0), out.unsqueeze(0)
        out = self.forward(params, x, taps)
        return self.loss_per_sample(out, y), out

    def objective(self, params, x, y):
        if hasattr(self.a, "objective"):   # Keras on TensorFlow or JAX: that backend differentiates it, twice
            return self.a.objective(params, x[0], y[0]).reshape(1), self.forward(params, x)
        per, out = self.per_sample(params, x, y)
        return per.mean(1), out

    # -- what hooks record

    def record(self, step: int, probe: str, names: list[str], table) -> None:
        self._records[0].extend((step, probe, n, float(v)) for n, v in zip(names, table[0]))

    def records(self, m: int = 0) -> list[tuple]:
        return self._records[m]
