"""scalelab: controlled, multi-seed experiments on how scale changes neural-network training."""

import os as _os

# Passive OpenMP waiting: with the default active spin, a training process on a loaded
# 2-core machine ran 100x slower. It must be set before torch loads its OpenMP runtime.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from ._lazy import lazy_exports  # noqa: E402

# Public name -> the private module that defines it. The modules load on first use
# (PEP 562), so `import scalelab` and `scalelab --help` import neither torch nor
# matplotlib. When a name moves to another module, edit its entry here.
_EXPORTS = {
    "DataError": "data", "Dataset": "data", "fetch_fashion_mnist": "data._fashion_mnist",
    "load_fashion_mnist": "data._fashion_mnist", "load_sklearn": "data._sklearn", "load_user": "data._file",
    "Watcher": "attach", "watch": "attach", "torch_study": "attach",
    "Hook": "engine", "StackedGroup": "engine", "StepView": "engine", "TrialResult": "engine",
    "train_group": "engine",
    "Parametrization": "_equivalence", "fold_affine": "_equivalence", "parametrization": "_equivalence",
    "check_equivalence": "_equivalence_check",
    "LocalExecutor": "_executors", "RayExecutor": "_ray_executor",
    "Finding": "_explain", "explain": "_explain",
    "Figure": "report", "figures": "report",
    "LoadedModel": "_load", "load": "_load",
    "write_report": "report",
    "summarize": "report",
    "SpecError": "_spec", "StudySpec": "_spec", "load_spec": "_spec", "Trial": "_spec", "expand": "_spec", "resolve": "_spec",
    "count_trials": "_spec", "iter_trials": "_spec",
    "Store": "_store", "StoreError": "_store",
    "builtin_spec": "_study", "builtin_studies": "_study", "run_study": "_study",
    "TRANSFORMS": "_transforms", "make_transform": "_transforms",
    "make_trajectories": "data._trajectories", "load_trajectory_file": "data._trajectories",
    "bayes_accuracy": "data._pn", "make_pn_classification": "data._pn", "decompose": "_explain._decompose",
    "run_cv_study": "_study",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
