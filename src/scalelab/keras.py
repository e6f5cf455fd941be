"""Keras 3: ``scalelab.keras.Diagnose``, a callback that records scalelab's probes inside
``model.fit`` and explains them (see :mod:`scalelab.attach`), and ``scalelab.keras.study``, the
user's own model over named factors across seeds, on Keras's TensorFlow, JAX or torch backend.

A Keras that cannot be imported (not installed, its backend not installed, Keras 2) ends the
import with one line saying what to do, not a traceback: the user's script could not run
either. On a backend scalelab does not support (numpy, openvino) the import prints one line
and ``Diagnose`` is a callback that does nothing: the script runs as it would without it."""

import os
import sys

SUPPORTED = ("tensorflow", "jax", "torch")


def _keras():
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"   # Keras's default when unset
    extra = {"tensorflow": "tensorflow", "jax": "jax"}.get(backend, "keras")
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
    return keras


keras = _keras()

if keras.backend.backend() in SUPPORTED:
    from .attach._keras import Diagnose  # noqa: E402
    from .attach._study_keras import study  # noqa: E402
else:
    class Diagnose(keras.callbacks.Callback):
        """Diagnose on a backend scalelab does not support: records nothing, changes nothing."""

        def __init__(self, study: str = "", **options):
            super().__init__()
            self.findings: list = []
            self.session = None

    def study(model, x, y, **options):
        raise SystemExit(f"scalelab.keras.study: Keras's {keras.backend.backend()!r} backend is not supported: set "
                         f"KERAS_BACKEND to one of {', '.join(SUPPORTED)} before keras is first imported")

    print(f"scalelab.keras: Keras's {keras.backend.backend()!r} backend is not supported: set KERAS_BACKEND to one "
          f"of {', '.join(SUPPORTED)} before keras is first imported to diagnose this script (it runs unchanged, "
          "undiagnosed)", file=sys.stderr)

del keras

__all__ = ["Diagnose", "study"]
