"""The grid study: arms × the factor grid × seeds, one stage (trajectory and user-data
specs are grids too: their model family plugs in below the engine)."""

from __future__ import annotations

from .._spec import iter_trials, trial_at
from ._strategy import Stage


class Grid:
    name = "grid"

    def applies(self, spec) -> bool:
        return True

    def check(self, spec) -> None:
        pass

    def stages(self, spec, store, study_id, data_dir=None, device=None):
        yield Stage("trials", lambda: enumerate(iter_trials(spec)), lambda i: trial_at(spec, i),
                    lambda plan, keys, size: plan.groups(keys, size, data_dir, device))


GRID = Grid()
