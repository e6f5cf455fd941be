"""A helper process of ``study run --workers N`` (started by :func:`scalelab._workers.helper_processes`):
``python -m scalelab._helper`` reads its stage from a pickled payload on stdin, claims that
stage's work units until none is left, and relays its progress to the driver on stdout."""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time


class _Sink:
    """A helper's progress, as lines on stdout at most every 0.2 s (the driver shows them)."""

    def __init__(self):
        self.steps = self.skipped = 0
        self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.steps += n
        if time.monotonic() - self.last >= 0.2:
            self.flush()

    def skip(self, n: int) -> None:
        self.skipped += n

    def flush(self) -> None:
        lines = (f"steps {self.steps}\n" if self.steps else "") + (f"skip {self.skipped}\n" if self.skipped else "")
        if lines:
            sys.stdout.write(lines)
            sys.stdout.flush()
        self.steps = self.skipped = 0
        self.last = time.monotonic()


def _exit_with_parent() -> None:
    """A helper ends when its driver does, however the driver ended (kill -9 included): a unit
    it holds goes back to the store from its last checkpoint, as the driver's own would."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _helper_main() -> None:
    """One helper: the study's stage ``payload['stage']`` in the store ``payload['db']``."""
    p = pickle.loads(sys.stdin.buffer.read())
    _exit_with_parent()
    import torch

    torch.set_num_threads(p["threads"])
    from ._executors import LocalExecutor
    from ._spec import load_spec
    from ._store import Store
    from ._study import _run_stage
    from .studies import strategy_for

    spec = load_spec(p["spec"])
    sink = _Sink()
    with Store(p["db"]) as store:
        stages = strategy_for(spec).stages(spec, store, p["sid"], p["data_dir"], p["device"])
        for i, stage in enumerate(stages):
            if i == p["stage"]:
                _run_stage(store, p["sid"], spec, stage, LocalExecutor(p["data_dir"], p["device"]), p["hooks"],
                           p["data_dir"], p["device"], sink, p["group_size"], 0.0, p["keep_checkpoints"], None)
                break
    sink.flush()


if __name__ == "__main__":
    _helper_main()
