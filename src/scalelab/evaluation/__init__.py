"""Cross-validated studies (issue 17): nested selection over repeated stratified k-fold × seeds,
the seed/split variance decomposition, and the report, answer and findings of such a study.
Their data (p≫n generators, folds, leak checks, a user's table) is in ``scalelab.data``."""

from ._runner import arm_specs, check_cv_spec, run_cv_study

__all__ = ["arm_specs", "check_cv_spec", "run_cv_study"]
