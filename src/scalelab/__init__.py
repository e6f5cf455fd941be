"""scalelab: controlled, multi-seed experiments on how scale changes neural-network training."""

import os as _os

# Passive OpenMP waiting: with the default active spin, a training process on a loaded
# 2-core machine ran 100x slower. It must be set before torch loads its OpenMP runtime.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# Public name -> the private module that defines it. The modules load on first use
# (PEP 562), so `import scalelab` and `scalelab --help` import neither torch nor
# matplotlib. When a name moves to another module, edit its entry here.
_EXPORTS = {
    "DataError": "_data", "Dataset": "_data", "fetch_fashion_mnist": "_data", "load_fashion_mnist": "_data",
    "load_sklearn": "_data", "load_user": "_data",
    "Watcher": "attach", "watch": "attach",
    "Hook": "engine", "StackedGroup": "engine", "StepView": "engine", "TrialResult": "engine",
    "train_group": "engine",
    "Parametrization": "_equivalence", "fold_affine": "_equivalence", "parametrization": "_equivalence",
    "check_equivalence": "_equivalence_check",
    "LocalExecutor": "_executors", "RayExecutor": "_ray_executor",
    "Finding": "_explain", "explain": "_explain",
    "Figure": "_figures", "figures": "_figures",
    "LoadedModel": "_load", "load": "_load",
    "write_report": "_html",
    "summarize": "_report",
    "SpecError": "_spec", "StudySpec": "_spec", "Trial": "_spec", "expand": "_spec", "resolve": "_spec",
    "count_trials": "_spec", "iter_trials": "_spec",
    "Store": "_store", "StoreError": "_store",
    "builtin_spec": "_study", "builtin_studies": "_study", "run_study": "_study",
    "TRANSFORMS": "_transforms", "make_transform": "_transforms",
    "make_trajectories": "trajectories", "load_trajectory_file": "trajectories",
    "bayes_accuracy": "evaluation", "decompose": "evaluation", "make_pn_classification": "evaluation",
    "run_cv_study": "_study",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups no longer reach __getattr__
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})
