"""Keras 3: ``scalelab.keras.Diagnose``, a callback that records scalelab's probes inside
``model.fit`` and explains them (see :mod:`scalelab.attach`).

On a Keras backend the callback does not support yet, importing this module prints one
line saying what to do, and ``Diagnose`` is a callback that does nothing: the user's
script runs as it would without it."""

import sys

import keras

SUPPORTED_BACKENDS = ("torch",)


class _Inert(keras.callbacks.Callback):
    """Diagnose on an unsupported backend: records nothing, changes nothing."""

    def __init__(self, study: str = "", **options):
        super().__init__()
        self.findings: list = []
        self.session = None


if keras.backend.backend() in SUPPORTED_BACKENDS:
    from .attach._keras import Diagnose
else:
    Diagnose = _Inert
    print(f"scalelab.keras: Keras's {keras.backend.backend()!r} backend is not supported yet; set "
          "KERAS_BACKEND=torch before keras is first imported to diagnose this script (it runs unchanged, undiagnosed)",
          file=sys.stderr)

__all__ = ["Diagnose"]
