"""The stacked engine: a group of same-shaped trials trains as one computation.

* ``_plan``: group key, group sizing, device, compile decision, trial checks;
* ``_state``: the group's state, each piece built by its own small function;
* ``_group``: :class:`StackedGroup` (data, model, objective), with ``_step`` (the training
  step) and ``_evaluate`` (held-out metrics);
* ``_hooks`` and ``_view``: named events, the read-only view hooks and probes see, and the
  actions a hook may ask of the loop (stop, keep its best state, put a result field);
* ``_loop``: :func:`train_group`, the loop over epochs and steps;
* ``_checkpoint``: a group's state between epochs (capture, restore; the store encodes it).
"""

from ._checkpoint import capture, restore
from ._group import StackedGroup
from ._hooks import EarlyStopping, Hook, Progress, StepCounter, StopEarly
from ._loop import TrialResult, train_group, train_unit
from ._plan import auto_group_size, environment, check_trial, check_trials, default_group_size, group_key, plan_groups, \
    resolve_device, want_compile
from ._view import StepView

__all__ = ["EarlyStopping", "Hook", "StopEarly", "Progress", "StackedGroup", "StepCounter", "StepView", "TrialResult", "auto_group_size", "capture", "restore",
           "check_trial", "check_trials", "default_group_size", "environment", "group_key", "plan_groups", "resolve_device",
           "train_group", "train_unit", "want_compile"]
