"""More processes on one machine for one stage of a study (``study run --workers N``).

Small models (an LSTM of 32 units, a 12-unit network on 64 rows) leave a CPU core mostly
waiting on Python and small kernels: a second thread in the same process barely helps, a
second process nearly doubles the work done. The stage's work units are already shared
through the store (claims, leases, per-epoch checkpoints: see ``_store/_work.py``), so a
helper is just another process running the same stage: ``python -m scalelab._helper``,
given the stage by a pickled payload on stdin, claims units until none is left and writes
its progress (``steps N`` / ``skip N`` lines) to stdout for the driver's display.

Each process runs ``cores // processes`` torch threads. The numbers do not depend on it:
every stored number is bit-identical with 1 and 2 threads (the built-in studies, compared
by ``benchmarks/compare_stores.py``), and the units are the same groups as with one process.

Helpers start only after :data:`START_AFTER_S` seconds of a stage still running: a helper
costs a process start and torch's import (1–3 s on a 2-core machine), which a stage that
ends sooner does not pay back.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager

START_AFTER_S = 5.0


def auto_workers(device: str | None) -> int:
    """Processes for ``--workers auto``: one per core on the CPU (at most 8: each holds its own
    copy of the data), one on a GPU (its own threads do the parallel work)."""
    if device and not str(device).startswith("cpu"):
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def workers_arg(value: str, executor: str, device: str | None) -> int:
    """``--workers``: a number of processes, or ``auto`` (:func:`auto_workers`; 1 with a cluster)."""
    if value == "auto":
        return 1 if executor != "local" else auto_workers(device)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"--workers {value}: give a number of processes (1 or more) or auto")
    if executor != "local" and int(value) > 1:
        raise ValueError(f"--workers {value} runs processes on this machine; with --executor {executor} the "
                         f"cluster places the groups: leave --workers out")
    return int(value)


def threads_for(processes: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, processes))


@contextmanager
def helper_processes(payload: dict, n: int, advance=None, start_after_s: float | None = None):
    """Up to ``n`` helper processes for one stage (``payload``: see :func:`_helper_main`), started
    once the stage has run ``start_after_s`` seconds; their progress lines go to ``advance``
    (with ``advance.skip``). On a normal exit the helpers finish (they stop when the stage has no
    unit left); on an exception (an interrupt) they are terminated, and their units go back to
    the store (a dead owner's unit is claimable at once, resumed from its last epoch)."""
    delay = START_AFTER_S if start_after_s is None else start_after_s
    lock = threading.Lock()
    procs: list[tuple[subprocess.Popen, object]] = []
    readers: list[threading.Thread] = []
    closed = threading.Event()

    def relay(proc):
        for line in proc.stdout:
            what, _, num = line.decode(errors="replace").partition(" ")
            if advance is None or not num.strip().isdigit():
                continue
            with lock:
                (advance if what == "steps" else advance.skip)(int(num))

    def start():
        if closed.is_set():
            return
        blob = pickle.dumps(payload)
        for _ in range(n):
            err = tempfile.TemporaryFile()
            env = {**os.environ, "OMP_NUM_THREADS": str(payload["threads"])}
            proc = subprocess.Popen([sys.executable, "-m", "scalelab._helper"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, env=env)
            proc.stdin.write(blob)
            proc.stdin.close()
            procs.append((proc, err))
            t = threading.Thread(target=relay, args=(proc,), daemon=True)
            t.start()
            readers.append(t)

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()

    def locked(n_: int) -> None:
        with lock:
            advance(n_)

    def locked_skip(n_: int) -> None:
        with lock:
            advance.skip(n_)

    locked.skip = locked_skip
    try:
        yield locked if advance is not None else None
    except BaseException:
        closed.set()
        timer.cancel()
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait()
        raise
    closed.set()
    timer.cancel()
    timer.join()
    for (proc, err), reader in zip(procs, readers):
        rc = proc.wait()
        reader.join()
        if rc != 0:   # its unit went back to the store; this process trained it instead
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            print(f"scalelab: a helper process stopped (exit {rc}: {lines[-1] if lines else 'no message'}); "
                  f"its work was done by this process", file=sys.stderr)
        err.close()
