"""Study kinds, and the built-in specs (the ``*.toml`` files beside this module).

A study kind is a *strategy*: it checks a spec and turns it into stages of trials that the
engine trains (:func:`scalelab.run_study` runs every stage through the same work units,
executors, checkpoints and progress). A stage may depend on the stored results of the
stages before it (cross-validation chooses a value on inner folds, then trains the outer
folds with it), so a strategy yields its stages one at a time, each computed from the store
once the stage before is stored. Adding a study kind is one module with a strategy and one
:func:`register` line below.

A strategy has ``name``, ``applies(spec) -> bool``, ``check(spec)`` (one actionable line
for what the kind cannot run) and ``stages(spec, store, study_id, data_dir, device)``,
yielding :class:`Stage` objects.
"""

from __future__ import annotations

from . import _cv, _grid, _verify
from ._strategy import STRATEGIES, Stage, register, strategy_for

register(_grid.GRID)
register(_cv.CROSS_VALIDATION)
register(_verify.VERIFY)

__all__ = ["STRATEGIES", "Stage", "register", "strategy_for"]
