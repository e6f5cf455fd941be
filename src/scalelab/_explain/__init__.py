"""Findings from probe records: mechanisms, with the numbers that show them.

Each rule is a small function ``rule(target, reference, found=()) -> list[Finding]`` over
:class:`LevelView` objects (one sweep level, its seeds' probe series, epoch metrics and
typed spec), registered with the finding ids it produces, their roles (``cause``,
``consequence``, ``note``), its rank and the probe quantities it reads (see
:func:`rules`). The *reference* is the level that did best on a metric every level has
(:func:`scalelab._explain._run.shared_metric`: best on validation where there is a
validation set, never a level's own loss against another's); rules contrast a level with it. A rule only says
what its numbers show: every figure in a finding's text is in its ``evidence``; when a
probe was not recorded the rule is silent. "no-pathology" is reported for a level where
no ``cause`` fired.

A new rule is a module here that decorates its function with :func:`register` and is
imported below (import order does not matter: the rank orders the rules).
"""

from __future__ import annotations

# the rule modules register themselves on import
from . import _class_collapse, _curvature, _dead_relu, _diverged, _first_layer_step, _fit, _no_pathology  # noqa: F401
from . import _zero_gradient  # noqa: F401
from . import _embedding_update, _vocab_scaling  # noqa: F401
from . import _conditioning, _divergence, _large_logits, _layer_imbalance, _saturation, _targets, _vanishing  # noqa: F401
from . import _trajectories  # noqa: F401
# rules for a watched run of the user's own script: its checks before the first step, and what one run shows
from . import _accuracy_at_majority, _checks_before, _dead_units, _diverged_at_lr, _gradient_flow  # noqa: F401
from . import _loss_at_chance, _loss_at_mean, _saturated_units  # noqa: F401
from ._findings import CAUSE, CONSEQUENCE, NOTE, ROLES, Finding
from ._registry import Rule, register, rules, run_rules
from ._run import explain, explain_views, reference, render_text
from ._view import LevelView, level_views, study_views, view_of

__all__ = ["CAUSE", "CONSEQUENCE", "NOTE", "ROLES", "Finding", "LevelView", "Rule", "explain", "explain_views",
           "level_views", "reference", "register", "render_text", "rules", "run_rules", "study_views", "view_of"]
