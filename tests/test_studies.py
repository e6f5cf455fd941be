"""Study kinds on the engine's one loop (issue 30): the hook actions (stop a model, keep its
best state) against a hand-written early-stopping loop; a cross-validated study through
the work-unit machinery: killed with SIGKILL and resumed, shared by two processes, the
same numbers on the same store as one uninterrupted process."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from scalelab import Store, run_study
from scalelab._spec import expand, parse_spec
from scalelab._store._checkpoint_blob import decode, encode
from scalelab.engine import EarlyStopping, Hook, StackedGroup, train_group
from scalelab.studies import STRATEGIES, strategy_for

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
sys.path.insert(0, str(HERE))
import kill_harness  # noqa: E402
import store_worker  # noqa: E402

# The oracle for "same numbers": the store comparison used to check refactors (NaN equals NaN).
_cs = importlib.util.spec_from_file_location("compare_stores", HERE.parent / "benchmarks" / "compare_stores.py")
compare_stores = importlib.util.module_from_spec(_cs)
_cs.loader.exec_module(compare_stores)

PATIENCE = 2


EPOCHS = 20


def noisy_spec():
    """Adam at a large learning rate on raw digits pixels: the validation loss stops improving
    after about 12 of 20 epochs."""
    return parse_spec({"name": "es", "seeds": 3, "data": {"dataset": "digits", "validation": 300, "train_subset": 500},
                       "model": {"hidden": [16]}, "optim": {"name": "adam", "lr": 0.05},
                       "train": {"batch_size": 32, "epochs": EPOCHS}})


def reference_early_stopping(trials, patience):
    """Keras's EarlyStopping(restore_best_weights=True) written out on the group's primitives
    (the first cross-validation runner's loop): per-epoch validation losses, the epochs
    trained and the restored parameters."""
    g = StackedGroup(trials)
    best = {k: v.detach().clone() for k, v in g.params.items()}
    best_loss = torch.full((g.M,), float("inf"), dtype=torch.float64)
    since = torch.zeros(g.M, dtype=torch.int64)
    losses = []
    for epoch in range(1, g.epochs + 1):
        perm = g.permutations()
        for k in range(g.steps_per_epoch):
            g.train_step(perm[:, k * g.batch_size: (k + 1) * g.batch_size])
        mon = torch.as_tensor(g.evaluate(g.X_val, g.y_val)["loss"])
        losses.append(mon.numpy().copy())
        better = mon < best_loss
        best_loss = torch.where(better, mon, best_loss)
        since = torch.where(better, torch.zeros_like(since), since + 1)
        for k, v in g.params.items():
            best[k] = torch.where(better.view(-1, *([1] * (v.dim() - 1))), v.detach(), best[k])
        if bool((since >= patience).all()):
            break
    return np.array(losses), epoch, best


class Final(Hook):
    """The parameters the models end with (after held states are put back)."""

    def on_group_end(self, view):
        for m in range(view.M):
            view.put(m, "params", {k: v[m].detach().clone() for k, v in view.params.items()})


def test_early_stopping_hook_matches_a_hand_written_loop():
    trials = expand(noisy_spec())
    losses, stopped, best = reference_early_stopping(trials, PATIENCE)
    assert stopped < EPOCHS, "the planted case must stop early"
    results = train_group(trials, hooks=[EarlyStopping("val_loss", PATIENCE), Final()])
    for m, r in enumerate(results):
        assert len(r.epochs) == stopped
        assert [e["val_loss"] for e in r.epochs] == list(losses[:, m])
        for k, v in best.items():
            assert torch.equal(r.fields["params"][k], v[m]), k
    # without the hook: every epoch, and the last parameters are not the restored ones
    plain = train_group(trials, hooks=[Final()])
    assert len(plain[0].epochs) == EPOCHS
    assert any(not torch.equal(plain[0].fields["params"][k], best[k][0]) for k in best)


def test_early_stopping_resumed_from_any_checkpoint_gives_the_same_result():
    trials = expand(noisy_spec())
    states = {}   # encoded as the store does: a captured state shares memory with the live tensors
    full = train_group(trials, hooks=[EarlyStopping("val_loss", PATIENCE), Final()],
                       checkpoint=lambda epoch, state: states.__setitem__(epoch, encode(state)))
    assert states, "checkpoints before the stop"
    for epoch, state in states.items():
        again = train_group(trials, hooks=[EarlyStopping("val_loss", PATIENCE), Final()], start=decode(state))
        for a, b in zip(full, again):
            assert a.epochs == b.epochs, epoch
            assert all(torch.equal(a.fields["params"][k], b.fields["params"][k]) for k in a.fields["params"])


def test_a_study_kind_is_a_registered_strategy():
    grid = parse_spec({"name": "g"})
    cv = parse_spec({"name": "c", "data": {"dataset": "pn-synthetic"}, "cv": {"folds": 2}})
    assert strategy_for(grid).name == "grid" and strategy_for(cv).name == "cross-validation"
    assert [s.name for s in STRATEGIES] == ["verify", "cross-validation", "grid"]   # the last registered first


# ----------------------------------------------------------------------------- a cross-validated study

CV_SPEC = {"name": "cv-units", "seeds": 4, "profile": "keras",
           "data": {"dataset": "pn-synthetic", "generator": {"n": 60, "p": 40, "informative": 10, "block": 5,
                                                            "rho": 0.3, "class_sep": 1.0}},
           "model": {"hidden": [12]}, "train": {"batch_size": 16, "epochs": 8},
           "cv": {"folds": 3, "inner_folds": 2, "inner_seeds": 2},
           "arms": {"network": {}, "l2": {"cv.select": "optim.l2", "cv.values": [1e-4, 1e-1]},
                    "early-stopping": {"cv.early_stopping": True, "cv.patience": 1, "optim.lr": 0.05},
                    "ensemble": {"cv.estimator": "ensemble", "cv.ensemble": 2},
                    "logreg": {"cv.estimator": "logreg-l2", "cv.select": "cv.C", "cv.values": [0.1, 10]}}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    run_study(CV_SPEC, db)
    return db


def same(a, b) -> list[str]:
    return compare_stores.compare(Store(a, readonly=True), Store(b, readonly=True), CV_SPEC["name"])


def test_cv_stages_store_every_phase_once(reference):
    s = Store(reference, readonly=True)
    trials = s.trials(s.require_study("cv-units")["id"])
    phases = {}
    for t in trials:
        phases.setdefault((t["level"]["arm"], t["level"]["phase"]), []).append(t)
    assert len(phases[("l2", "inner")]) == 3 * 2 * 2 * 2       # folds × inner folds × values × inner seeds
    assert len(phases[("l2", "outer")]) == 3 * 4 and len(phases[("ensemble", "outer")]) == 3 * 2
    assert len({t["key"] for t in trials}) == len(trials)
    es = [len(s.epochs(t["id"])) for t in phases[("early-stopping", "outer")]]
    assert min(es) < 8, "early stopping stopped some fold early"
    chosen = {t["level"].get("chosen") for t in phases[("l2", "test")]}
    assert len(chosen) == 1 and chosen <= {1e-4, 1e-1}


def _cv_worker(db, log, tmp, env=ENV):
    spec_path = Path(tmp) / "cv.json"
    spec_path.write_text(json.dumps(CV_SPEC))
    return subprocess.Popen([sys.executable, str(HERE / "store_worker.py"), str(db), str(spec_path), str(log)],
                            env=env, stderr=subprocess.PIPE, text=True)


def test_two_processes_share_a_cross_validated_study(tmp_path, reference):
    db, log = tmp_path / "s.db", tmp_path / "log"
    # both start claiming together, and the first to start a unit waits until the other has one
    env = {**ENV, "SCALELAB_WORKER_BARRIER": f"{tmp_path / 'arrived'}:2", "SCALELAB_WORKER_WAIT": "1"}
    procs = [_cv_worker(db, log, tmp_path, env) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    starts = [ln.split() for ln in log.read_text().splitlines() if ln.startswith("start")]
    assert len({pid for _, pid, _, _ in starts}) == 2, "both processes trained units"
    units = [keys for _, _, _, keys in starts]
    assert len(units) == len(set(units)), "no unit trained twice"
    assert same(reference, db) == []


def group_epochs(lines) -> int:
    return sum(ln.startswith("epoch") for ln in lines)


def test_a_killed_cross_validated_study_trains_only_the_rest(tmp_path):
    """Killed once it has trained ~70% of an uninterrupted run's group-epochs (counted in its
    own log, so a loaded machine does not move the moment), then rerun: the two runs together train
    at most one group-epoch more than the uninterrupted one (the epoch in progress), never a
    trial stored before, and store the same numbers (both in groups of kill_harness.GROUP)."""
    (tmp_path / "spec.json").write_text(json.dumps(CV_SPEC))
    ref_db, ref_log = tmp_path / "ref.db", tmp_path / "ref.log"
    kill_harness.run(tmp_path, ref_db, ref_log)
    total = group_epochs(ref_log.read_text().splitlines())
    db, log = tmp_path / "k.db", tmp_path / "k.log"
    pid = kill_harness.run(tmp_path, db, log, wait=False)
    while not log.exists() or group_epochs(log.read_text().splitlines()) < 0.7 * total:
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "killed before the study finished"
    c = Store(db, readonly=True)
    before = {t["key"] for t in c.trials(c.require_study("cv-units")["id"])}
    c.close()
    n_killed = len(log.read_text().splitlines())
    kill_harness.run(tmp_path, db, log)
    lines = log.read_text().splitlines()
    rerun = [ln.split() for ln in lines[n_killed:] if ln.startswith("start")]
    assert before and not any(set(keys.split(",")) & before for _, _, _, keys in rerun), "a stored trial retrained"
    assert any(int(done) > 0 for _, _, done, _ in rerun), "a unit resumed from its checkpoint"

    assert group_epochs(ref_log.read_text().splitlines()) <= group_epochs(lines) <= \
        group_epochs(ref_log.read_text().splitlines()) + 1
    assert same(ref_db, db) == []


# ----------------------------------------------------------------------------- helper processes (--workers)

def test_helper_processes_share_a_study_and_store_the_same_numbers(tmp_path, reference, monkeypatch):
    """run_study(workers=2): a helper process claims units beside this one in every stage of the
    cross-validated study (its hooks pickled to it), no unit trains twice, and the store holds
    the numbers of one process alone (the reference, one process, torch's default threads)."""
    import scalelab._workers

    monkeypatch.setattr(scalelab._workers, "START_AFTER_S", 0.0)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))
    db, log = tmp_path / "w.db", tmp_path / "log"
    log.touch()
    run_study(CV_SPEC, db, workers=2, hooks=[store_worker.WaitForAnother(log, os.getpid())])
    starts = [ln.split() for ln in log.read_text().splitlines() if ln.startswith("start")]
    assert len({pid for _, pid, _, _ in starts}) >= 2, "a helper process trained units"
    units = [keys for _, _, _, keys in starts]
    assert len(units) == len(set(units)), "no unit trained twice"
    assert same(reference, db) == []


def test_a_process_claims_only_units_of_its_own_stage(tmp_path):
    """A faster process may plan the next stage's units while another still runs this one:
    claim and units_left given a stage's keys leave the other stage's units alone."""
    s = Store(tmp_path / "c.db")
    sid = s.study_id("stages", "h", {})
    first, second = ["a", "b"], ["c"]
    s.plan_units(sid, first, lambda todo: [[(i, k)] for i, k in enumerate(first) if k in todo])
    s.plan_units(sid, second, lambda todo: [[(0, "c")]])
    me = f"{os.uname().nodename}:{os.getpid()}:x"
    assert s.units_left(sid) == 3 and s.units_left(sid, set(first)) == 2 and s.units_left(sid, {"c"}) == 1
    got = [s.claim(sid, me, set(first)) for _ in range(3)]
    assert [u.trial_keys for u in got[:2]] == [["a"], ["b"]] and got[2] is None
    assert s.claim(sid, me, {"c"}).trial_keys == ["c"]
