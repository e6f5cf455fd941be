"""Attach scalelab's probes to training code it did not write: a PyTorch loop
(:func:`watch`) or a Keras 3 ``model.fit`` (:class:`Diagnose`, also ``scalelab.keras``).

Both offer the engine's step view over the user's model (``_view``), so the same probe
classes record the same quantities into the same store, and ``scalelab explain`` reads
watched runs as it reads built-in studies (``_session``).
"""

from ._session import Session, WatchedResult, WatchedTrial, trial_spec
from ._torch import TorchAdapter
from ._torch_watch import Watcher, watch
from ._view import AttachedView, LayerInfo


def __getattr__(name: str):
    # the Keras callback loads keras only when asked for
    if name in ("Diagnose", "KerasAdapter"):
        from . import _keras

        return getattr(_keras, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AttachedView", "Diagnose", "KerasAdapter", "LayerInfo", "Session", "TorchAdapter", "WatchedResult",
           "WatchedTrial", "Watcher", "trial_spec", "watch"]
