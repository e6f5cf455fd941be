"""The data side: a registry of data sets (built-in, scikit-learn, a user's file, generators;
``_registry.py``), each loaded by its own module into a :class:`Dataset`, and a trial's
train / validation / test :class:`Split` (``_split.py``; a cross-validation fold's rows in
``_folds.py``)."""

from .._lazy import lazy_exports

# loaded on first use: the spec reads the registry's names and the CLI DataError without numpy
_EXPORTS = {"DataError": "_errors", "Dataset": "_dataset", "Split": "_dataset", "DATASETS": "_registry",
            "Entry": "_registry", "register": "_registry", "dataset_key": "_registry", "load_dataset": "_registry",
            "image_shape": "_split", "split_dataset": "_split", "trial_split": "_split"}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
