"""The verification study kind: each cause's remedy arm next to the cause's level, across seeds
(issue 32). Its spec is a grid of arms with a ``verify`` section naming, per cause, the two
arms that hold it (built by :func:`scalelab._verify_build.verification_spec`); it trains as one
stage, like the grid, through the same work units, executors and checkpoints."""

from __future__ import annotations

from .._spec import SpecError
from ._grid import GRID


class Verify:
    name = "verify"

    def applies(self, spec) -> bool:
        return spec.verify is not None

    def check(self, spec) -> None:
        for c in spec.verify.causes:
            missing = [a for a in (c.before, c.after) if a not in spec.arms]
            if missing:
                raise SpecError(f"{spec.name}: verify.causes {c.finding!r} names arm(s) {missing} the spec does not "
                                f"have; rebuild it with scalelab verify {spec.verify.of}")

    def stages(self, spec, store, study_id, data_dir=None, device=None):
        for stage in GRID.stages(spec, store, study_id, data_dir, device):
            stage.name = "verify"
            yield stage


VERIFY = Verify()
