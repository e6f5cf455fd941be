"""A study run in its own process, for the store tests and benchmarks/store_trust.py:
``python store_worker.py DB SPEC.json LOG [GROUP_SIZE]``. Each group this process starts
training appends one line (pid, epochs already done, trial keys) to LOG, and each finished
epoch a line ``epoch PID N KEYS``: an outside count of training runs, independent of the
store's own bookkeeping."""

import json
import os
import sys
import time
from pathlib import Path

import scalelab
from scalelab import Hook


class Log(Hook):
    def __init__(self, path, trials):
        self.path, self.keys = path, ",".join(t.key for t in trials)

    def _line(self, text):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (text + "\n").encode())
        os.close(fd)

    def on_group_start(self, view):
        self._line(f"start {os.getpid()} {view.step} {self.keys}")

    def on_epoch_end(self, view, epoch, metrics):
        self._line(f"epoch {os.getpid()} {epoch} {self.keys}")


class LogFactory:
    def __init__(self, path):
        self.path = path

    def __call__(self, trials):
        return Log(self.path, trials)


class WaitForAnother:
    """A hook factory (picklable, so it travels to helpers): each group logs its process; a group
    of process ``who`` (any process when None) waits until another process has started one, so
    that both train units whatever the machine's load (the wait changes no numbers)."""

    def __init__(self, log, who=None):
        self.log, self.who = Path(log), who

    def __call__(self, trials):
        log, who, inner = self.log, self.who, Log(str(self.log), trials)

        def others_started():
            me = str(os.getpid())
            return any(ln.split()[1] != me for ln in log.read_text().splitlines() if ln.startswith("start"))

        class Wait(Hook):
            def on_group_start(self, view):
                inner.on_group_start(view)
                deadline = time.time() + 120
                while who in (None, os.getpid()) and time.time() < deadline and not others_started():
                    time.sleep(0.05)

        return Wait()


def barrier(spec: str) -> None:
    """``SCALELAB_WORKER_BARRIER=PATH:N``: wait until N workers have arrived, so that on a busy
    machine a worker that imports slowly still finds units left to claim."""
    import time

    path, n = spec.rsplit(":", 1)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    deadline = time.time() + 120
    while len(open(path).read().split()) < int(n) and time.time() < deadline:
        time.sleep(0.05)


def main(db, spec_json, log, group_size=None, lease_s="60"):
    if os.environ.get("SCALELAB_WORKER_BARRIER"):
        barrier(os.environ["SCALELAB_WORKER_BARRIER"])
    spec = json.loads(open(spec_json).read())
    store = scalelab.Store(db, lease_s=float(lease_s))
    # SCALELAB_WORKER_WAIT: this process's first group waits for another's (both train units)
    hooks = [WaitForAnother(log) if os.environ.get("SCALELAB_WORKER_WAIT") else LogFactory(log)]
    scalelab.run_study(spec, store, group_size=int(group_size) if group_size else None, hooks=hooks)


if __name__ == "__main__":
    main(*sys.argv[1:])
