"""scalelab: controlled, multi-seed experiments on how scale changes neural-network training."""

import os as _os

# Passive OpenMP waiting: with the default active spin, a training process on a loaded
# 2-core machine ran 100x slower. It must be set before torch loads its OpenMP runtime.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from ._data import DataError, Dataset, fetch_fashion_mnist, load_fashion_mnist, load_sklearn, load_user  # noqa: E402
from ._engine import StackedGroup, TrialResult, train_group  # noqa: E402
from ._equivalence import Parametrization, check_equivalence, fold_affine, parametrization  # noqa: E402
from ._executors import LocalExecutor  # noqa: E402
from .explain import Finding, explain  # noqa: E402
from ._html import write_report  # noqa: E402
from ._report import summarize  # noqa: E402
from ._spec import SpecError, StudySpec, Trial, expand, resolve  # noqa: E402
from ._store import Store  # noqa: E402
from ._study import builtin_spec, builtin_studies, run_study  # noqa: E402
from ._transforms import TRANSFORMS, make_transform  # noqa: E402

__all__ = [
    "DataError", "Dataset", "Finding", "LocalExecutor", "Parametrization", "SpecError", "StackedGroup", "Store", "StudySpec", "TRANSFORMS",
    "Trial", "TrialResult", "builtin_spec", "builtin_studies", "check_equivalence", "expand", "explain", "fold_affine", "fetch_fashion_mnist",
    "load_fashion_mnist", "load_sklearn", "load_user", "make_transform", "parametrization", "resolve", "run_study", "summarize",
    "train_group", "write_report", "__version__",
]
