"""Evaluation as a first-class object (issue 17): p≫n data with a known Bayes accuracy,
repeated stratified k-fold × seeds, nested selection, leak checks, the seed/split variance
decomposition, and the report, answer and findings of a cross-validated study."""

from ._decompose import decompose
from ._folds import LeakError, Plan, check_disjoint, check_fitted_on, check_label_copy, cv_split, make_plan
from ._generate import bayes_accuracy, fmnist_pair, load_pn_dataset, make_pn_classification
from ._runner import arm_specs, check_cv_spec, run_cv_study
from ._tables import check_folds, read_table

__all__ = ["LeakError", "Plan", "arm_specs", "bayes_accuracy", "check_cv_spec", "check_disjoint", "check_fitted_on",
           "check_folds", "check_label_copy", "cv_split", "decompose", "fmnist_pair", "load_pn_dataset",
           "make_plan", "make_pn_classification", "read_table", "run_cv_study"]
