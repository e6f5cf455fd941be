"""Kill -9 a study at random moments and check every rerun (seeded):
``python kill_harness.py WORKDIR [REPS] [SEED]`` prints one JSON line.

One reference run, then per repetition: start the study in a fresh store, SIGKILL it at a
uniformly random moment of its expected run time, rerun it to the end, and compare every
stored epoch metric and probe record with the reference (exact equality), count each
trial's rows, and the epochs the killed process finished but the store did not keep.
Every run is a real process, forked from this one after the imports (so a repetition costs
its training, not an interpreter start), and killed with a real SIGKILL."""

import json
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import store_worker  # noqa: E402  (imports scalelab and torch once, before any fork)
import sklearn.datasets  # noqa: E402,F401  (the digits loader: 2 s of imports, paid once here)
SPEC = {"name": "kill", "seeds": 3, "profile": "keras",
        "data": {"dataset": "digits", "validation": 200},
        "model": {"hidden": [32]}, "optim": {"name": "adam", "lr": 0.003},
        "train": {"batch_size": 32, "epochs": 6}, "probes": {"preset": "cheap"},
        "grid": {"input.scale": [1, "1/16"]}}
GROUP = 4   # 6 trials in groups of 4 and 2: a kill lands inside a group or between two


def run(workdir, db, log, wait=True):
    """The study in a forked child (``store_worker.main``); returns its pid."""
    pid = os.fork()
    if pid == 0:   # the child: train, then leave without running the parent's cleanup
        code = 1
        try:
            import torch

            torch.set_num_threads(1)
            store_worker.main(str(db), str(workdir / "spec.json"), str(log), str(GROUP))
            code = 0
        finally:
            os._exit(code)
    if wait:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, f"run on {db} failed"
    return pid


def contents(db):
    """Every trial's stored numbers by key, and the number of rows per key."""
    c = sqlite3.connect(db)
    out, rows = {}, {}
    for tid, key in c.execute("SELECT id, key FROM trials"):
        rows[key] = rows.get(key, 0) + 1
        out[key] = (c.execute("SELECT * FROM epochs WHERE trial_id=? ORDER BY epoch", (tid,)).fetchall(),
                    c.execute("SELECT step, probe, name, value FROM probes WHERE trial_id=? ORDER BY step, probe, name",
                              (tid,)).fetchall())
        out[key] = json.dumps([[r[1:] for r in out[key][0]], out[key][1]])
    c.close()
    return out, rows


def wait_for(log):
    while not log.exists():
        time.sleep(0.002)
    return time.perf_counter()


def stored_epochs(db) -> dict:
    """Epochs the store holds per trial key: a finished trial's epochs, else its unit's checkpoint."""
    c = sqlite3.connect(db)
    out = dict(c.execute("SELECT t.key, COUNT(e.epoch) FROM trials t JOIN epochs e ON e.trial_id = t.id GROUP BY t.id"))
    for epoch, keys in c.execute("SELECT c.epoch, w.trial_keys FROM checkpoints c JOIN work w ON w.id = c.work_id"):
        for k in json.loads(keys):
            out.setdefault(k, epoch)
    c.close()
    return out


def logged_epochs(log) -> dict:
    """Epochs each trial finished in the killed process, from its own log."""
    out: dict = {}
    for ln in (log.read_text().splitlines() if log.exists() else []):
        kind, _, epoch, keys = ln.split()
        if kind == "epoch":
            for k in keys.split(","):
                out[k] = max(out.get(k, 0), int(epoch))
    return out


def main(workdir, reps=10, seed=0):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.json").write_text(json.dumps(SPEC))
    rng = random.Random(seed)
    pid = run(workdir, workdir / "ref.db", workdir / "ref.log", wait=False)
    t0 = wait_for(workdir / "ref.log")
    os.waitpid(pid, 0)
    t_ref = time.perf_counter() - t0   # from the first group's start to the end
    ref, _ = contents(workdir / "ref.db")
    reps_out = []
    for i in range(int(reps)):
        db, log = workdir / f"r{i}.db", workdir / f"r{i}.log"
        delay = rng.uniform(0.0, 0.8) * t_ref
        pid = run(workdir, db, log, wait=False)
        wait_for(log)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        logged = logged_epochs(log)
        stored = stored_epochs(db) if db.exists() else {}
        lost = {k: n - stored.get(k, 0) for k, n in logged.items()}
        run(workdir, db, log)
        got, rows = contents(db)
        reps_out.append(dict(kill_after_s=round(delay, 2), killed=os.WIFSIGNALED(status),
                             max_epochs_lost_per_trial=max(lost.values(), default=0),
                             trial_epochs_lost=sum(lost.values()),
                             resumed=sum(1 for ln in log.read_text().split("\n")
                                         if ln.startswith("start") and ln.split()[2] != "0"),
                             all_stored_once=set(rows) == set(ref) and all(v == 1 for v in rows.values()),
                             bit_identical=got == ref))
    print(json.dumps(dict(reps=int(reps), seed=int(seed), reference_s=round(t_ref, 2), trials=len(ref),
                          epochs=SPEC["train"]["epochs"], group_size=GROUP, runs=reps_out)))


if __name__ == "__main__":
    main(*sys.argv[1:])
