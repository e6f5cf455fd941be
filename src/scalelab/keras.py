"""Keras 3: ``scalelab.keras.Diagnose``, a callback that records scalelab's probes inside
``model.fit`` and explains them (see :mod:`scalelab.attach`), on Keras's TensorFlow, JAX or
torch backend.

A Keras that cannot be used (not installed, its backend not installed, Keras 2, a backend
scalelab does not support) ends the import with one line saying what to do, not a traceback."""

import os

SUPPORTED = ("tensorflow", "jax", "torch")


def _keras():
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"   # Keras's default when unset
    if backend not in SUPPORTED:
        raise SystemExit(f"scalelab.keras: Keras's {backend!r} backend is not supported: set KERAS_BACKEND to one "
                         f"of {', '.join(SUPPORTED)} before keras is imported")
    extra = {"tensorflow": "tensorflow", "jax": "jax", "torch": "keras"}[backend]
    try:
        import keras
    except ImportError as e:
        raise SystemExit(f"scalelab.keras: Keras could not be imported on its {backend!r} backend ({e}): "
                         f"pip install 'scalelab[{extra}]', or set KERAS_BACKEND to an installed one of "
                         f"{', '.join(SUPPORTED)}") from None
    version = getattr(keras, "__version__", "0")
    if int(version.split(".")[0]) < 3:
        raise SystemExit(f"scalelab.keras: needs Keras 3, found Keras {version}: pip install 'keras>=3' "
                         "(TensorFlow 2.16 and later bring it)")
    if keras.backend.backend() not in SUPPORTED:
        raise SystemExit(f"scalelab.keras: Keras's {keras.backend.backend()!r} backend is not supported: set "
                         f"KERAS_BACKEND to one of {', '.join(SUPPORTED)} before keras is imported")


_keras()

from .attach._keras import Diagnose  # noqa: E402

__all__ = ["Diagnose"]
