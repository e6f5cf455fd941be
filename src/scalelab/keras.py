"""Keras 3: ``scalelab.keras.Diagnose``, a callback that records scalelab's probes inside
``model.fit`` and explains them (see :mod:`scalelab.attach`)."""

from .attach._keras import Diagnose

__all__ = ["Diagnose"]
