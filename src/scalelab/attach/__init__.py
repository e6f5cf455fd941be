"""Attach scalelab's probes to training code it did not write: a PyTorch loop
(:func:`watch`) or a Keras 3 ``model.fit`` (:class:`Diagnose`, also ``scalelab.keras``); and
run the user's own model over named factors across seeds (:func:`torch_study`, ``scalelab.keras.study``).

Both offer the engine's step view over the user's model (``_view``), so the same probe
classes record the same quantities into the same store, and ``scalelab explain`` reads
watched runs as it reads built-in studies (``_session``).
"""

from .._lazy import lazy_exports

_EXPORTS = {"Session": "_session", "WatchedResult": "_session", "WatchedTrial": "_session", "trial_spec": "_session",
            "TorchAdapter": "_torch", "Watcher": "_torch_watch", "watch": "_torch_watch", "AttachedView": "_view",
            "LayerInfo": "_view", "Diagnose": "_keras", "KerasAdapter": "_keras",
            "torch_study": "_study_torch"}
__all__ = ["AttachedView", "Diagnose", "KerasAdapter", "LayerInfo", "Session", "TorchAdapter", "WatchedResult",
           "WatchedTrial", "Watcher", "torch_study", "trial_spec", "watch"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
