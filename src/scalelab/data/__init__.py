"""The data side: a registry of data sets (built-in, scikit-learn, a user's file, generators;
``_registry.py``), each loaded by its own module into a :class:`Dataset`, and a trial's
train / validation / test :class:`Split` (``_split.py``; a cross-validation fold's rows in
``_folds.py``)."""

from ._dataset import DataError, Dataset, Split
from ._registry import DATASETS, Entry, register
from ._registry import dataset_key, load_dataset
from ._split import image_shape, split_dataset, trial_split

__all__ = ["DATASETS", "DataError", "Dataset", "Entry", "Split", "dataset_key", "image_shape", "load_dataset",
           "register", "split_dataset", "trial_split"]
