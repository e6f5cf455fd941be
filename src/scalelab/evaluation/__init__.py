"""Evaluation as a first-class object (issue 17): p≫n data with a known Bayes accuracy,
repeated stratified k-fold × seeds, nested selection, leak checks, the seed/split variance
decomposition, and the report, answer and findings of a cross-validated study (which runs
as stages on the engine: scalelab.studies)."""

from ._decompose import decompose
from ._folds import LeakError, Plan, check_disjoint, check_fitted_on, check_label_copy, cv_split, make_plan
from ._generate import bayes_accuracy, fmnist_pair, load_pn_dataset, make_pn_classification
from ._tables import check_folds, read_table

__all__ = ["LeakError", "Plan", "bayes_accuracy", "check_disjoint", "check_fitted_on",
           "check_folds", "check_label_copy", "cv_split", "decompose", "fmnist_pair", "load_pn_dataset",
           "make_plan", "make_pn_classification", "read_table"]
