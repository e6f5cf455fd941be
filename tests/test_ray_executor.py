"""The Ray executor on a real two-node Ray cluster (Ray's own multi-node test cluster on
this machine): the same numbers as the local executor, a killed worker retried, a killed
driver resumed, the data set sent once per node. One cluster serves every test here."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

import scalelab  # noqa: E402
from scalelab import Hook, Store, run_study  # noqa: E402
from scalelab._cli import main  # noqa: E402
from scalelab import RayExecutor  # noqa: E402
from scalelab._spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The oracle for "same numbers": the store comparison used to check refactors (NaN equals NaN).
_cs = importlib.util.spec_from_file_location("compare_stores", ROOT / "benchmarks" / "compare_stores.py")
compare_stores = importlib.util.module_from_spec(_cs)
_cs.loader.exec_module(compare_stores)

# 8 trials of digits in 4 groups of 2: small enough for a shared 2-core machine.
SPEC = dict(name="ray-digits", seeds=2, data=dict(dataset="digits", validation=0.2),
            model=dict(hidden=[16]), loss=dict(name="crossentropy"),
            train=dict(epochs=3, batch_size=64, group_size=2), probes=dict(preset="cheap"),
            grid={"optim.lr": [0.01, 0.03, 0.1, 0.3]})
N_TRIALS = 8


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    # Hooks defined here travel by value: the workers do not have this test module on their path.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("local") / "local.db"
    run_study(SPEC, path)
    return Store(path)


def same_numbers(store: Store, reference: Store) -> list[str]:
    return compare_stores.compare(reference, store, SPEC["name"])


def stored_keys(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT key FROM trials")]


class _Stall(Hook):
    """In the chosen group, at its first epoch's end: report this worker's pid, then wait to be killed."""

    def __init__(self, folder: str):
        self.folder = folder

    def on_epoch_end(self, view, epoch, metrics):
        Path(self.folder, f"{os.getpid()}.pid").write_text("")
        time.sleep(120)


class StallOnce:
    """Hook factory: the group holding ``key`` stalls on its first attempt (or on every attempt)."""

    def __init__(self, key: str, folder: str, always: bool = False):
        self.key, self.folder, self.always = key, folder, always

    def __call__(self, trials):
        if self.key not in {t.key for t in trials}:
            return None
        attempts = Path(self.folder, "attempts")
        n = int(attempts.read_text()) if attempts.exists() else 0
        attempts.write_text(str(n + 1))
        return _Stall(self.folder) if (self.always or n == 0) else None


def kill_stalled_workers(folder: Path, stop: threading.Event) -> None:
    """The test's hand: SIGKILL each worker process that reports itself stalled."""
    while not stop.is_set():
        for f in folder.glob("*.pid"):
            os.kill(int(f.stem), signal.SIGKILL)
            f.unlink()
        time.sleep(0.1)


def run_with_killer(folder: Path, **kw) -> None:
    stop = threading.Event()
    killer = threading.Thread(target=kill_stalled_workers, args=(folder, stop), daemon=True)
    killer.start()
    try:
        run_study(SPEC, **kw)
    finally:
        stop.set()
        killer.join()


def test_same_numbers_as_local_and_data_sent_once_per_node(cluster, local_store, tmp_path, capsys):
    store = Store(tmp_path / "ray.db")
    ex = RayExecutor()
    run_study(SPEC, store, executor=ex, progress=True)
    assert "8/8 trials" in capsys.readouterr().err  # the driver's bar counts trials from every node
    # the workers ran this checkout's scalelab (they inherit PYTHONPATH from the test process)
    where = ray.get(ray.remote(num_cpus=1)(lambda: __import__("scalelab").__file__).remote())
    assert Path(where).resolve() == Path(scalelab.__file__).resolve()
    assert len(stored_keys(store)) == N_TRIALS
    assert same_numbers(store, local_store) == []
    # every trial says where it ran; both nodes took groups
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    ran_on = {t["env"]["node_id"] for t in store.trials(1)}
    assert {t["env"]["executor"] for t in store.trials(1)} == {"ray"}
    assert ran_on == nodes and len(nodes) == 2
    # one put of the data set for 4 groups; Ray holds one copy on each node that ran a group
    assert ex.puts == 1
    (ref,) = ex.data_refs.values()
    loc = ray.experimental.get_object_locations([ref])[ref]
    assert sorted(loc["node_ids"]) == sorted(nodes)
    assert loc["object_size"] > 64 * 1437  # the arrays themselves (1437 training images of 64 pixels)


def test_killed_worker_is_retried_and_finished_trials_stored_once(cluster, local_store, tmp_path):
    target = sorted(t.key for t in scalelab.expand(load_spec(SPEC)))[3]
    (tmp_path / "k").mkdir()
    store = Store(tmp_path / "ray.db")
    run_with_killer(tmp_path / "k", db=store, executor=RayExecutor(max_retries=2),
                    hooks=[StallOnce(target, str(tmp_path / "k"))])
    assert (tmp_path / "k" / "attempts").read_text() == "2"  # killed once, retried once
    keys = stored_keys(store)
    assert len(keys) == len(set(keys)) == N_TRIALS
    assert store.failed(1) == []
    assert same_numbers(store, local_store) == []


def test_worker_that_keeps_dying_is_recorded_failed_then_rerun_completes(cluster, local_store, tmp_path, capsys):
    target = sorted(t.key for t in scalelab.expand(load_spec(SPEC)))[0]
    (tmp_path / "k").mkdir()
    store = Store(tmp_path / "ray.db")
    run_with_killer(tmp_path / "k", db=store, executor=RayExecutor(max_retries=1),
                    hooks=[StallOnce(target, str(tmp_path / "k"), always=True)])
    assert (tmp_path / "k" / "attempts").read_text() == "2"  # max_retries=1: two attempts, both killed
    failed = store.failed(1)
    assert len(failed) == 2 and target in {f["key"] for f in failed}  # the target's whole group
    assert all("after 2 attempt(s)" in f["reason"] for f in failed)
    assert len(store.trials(1)) == N_TRIALS - 2  # the other groups finished
    capsys.readouterr()
    assert main(["show", SPEC["name"], "--db", str(store.path), "--format", "json"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("scalelab: 2 trial(s) failed") and err.endswith("rerun the same command to try them again")
    run_study(SPEC, store, executor=RayExecutor())  # the same command again, without the killer
    keys = stored_keys(store)
    assert len(keys) == len(set(keys)) == N_TRIALS and store.failed(1) == []
    assert same_numbers(store, local_store) == []


class _Raise(Hook):
    def on_group_start(self, view):
        raise RuntimeError("this group cannot train")


class RaiseIn:
    """Hook factory: training of the group holding ``key`` raises; counts its attempts."""

    def __init__(self, key: str, folder: str):
        self.key, self.folder = key, folder

    def __call__(self, trials):
        if self.key not in {t.key for t in trials}:
            return None
        with open(Path(self.folder, "attempts"), "a") as f:
            f.write("x")
        return _Raise()


def test_training_error_is_recorded_failed_without_retry(cluster, tmp_path):
    target = sorted(t.key for t in scalelab.expand(load_spec(SPEC)))[5]
    store = Store(tmp_path / "ray.db")
    run_study(SPEC, store, executor=RayExecutor(max_retries=3), hooks=[RaiseIn(target, str(tmp_path))])
    assert (tmp_path / "attempts").read_text() == "x"  # an error in training is not a crash: no retry
    failed = store.failed(1)
    assert len(failed) == 2 and target in {f["key"] for f in failed}
    assert {f["reason"] for f in failed} == {"training raised RuntimeError: this group cannot train"}
    assert len(store.trials(1)) == N_TRIALS - 2


def test_group_no_node_can_hold_is_refused_in_one_line(cluster, tmp_path):
    store = Store(tmp_path / "ray.db")
    with pytest.raises(ValueError, match=r"^no node of the Ray cluster can run a group needing .*'num_cpus': 4"
                                         r".*use a smaller --group-size or start nodes with more resources$"):
        run_study(SPEC, store, executor=RayExecutor(cpus_per_group=4))
    assert stored_keys(store) == []


def test_killed_driver_rerun_completes_without_duplicates(cluster, local_store, tmp_path):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(_toml(SPEC))
    db = tmp_path / "ray.db"
    cmd = [sys.executable, "-m", "scalelab", "run", str(spec_path), "--db", str(db), "--quiet",
           "--executor", "ray", "--address", cluster.address]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    n_at_kill = 0
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None:
        if db.exists():
            try:
                n_at_kill = Store(db).conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
            except Exception:  # the driver is creating the store
                n_at_kill = 0
            if n_at_kill:
                driver.kill()
                break
        time.sleep(0.05)
    driver.wait()
    assert driver.returncode == -signal.SIGKILL, driver.stderr.read().decode()[-2000:]
    store = Store(db)
    assert 0 < len(stored_keys(store)) < N_TRIALS  # killed mid-study
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    keys = stored_keys(store)
    assert len(keys) == len(set(keys)) == N_TRIALS
    assert same_numbers(store, local_store) == []


class StallOnNode:
    """Hook factory: every group that lands on node ``node_id`` stalls (the test then removes that node)."""

    def __init__(self, node_id: str, folder: str):
        self.node_id, self.folder = node_id, folder

    def __call__(self, trials):
        return _Stall(self.folder) if ray.get_runtime_context().get_node_id() == self.node_id else None


def test_node_killed_mid_group_is_retried_on_another_node(cluster, local_store, tmp_path):
    """Runs last: it takes the second node away for good."""
    doomed = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    folder = tmp_path / "k"
    folder.mkdir()
    stop = threading.Event()

    def remove_node_when_stalled():
        while not stop.is_set() and not list(folder.glob("*.pid")):
            time.sleep(0.1)
        if not stop.is_set():
            cluster.remove_node(doomed, allow_graceful=False)  # the node's processes are killed

    killer = threading.Thread(target=remove_node_when_stalled, daemon=True)
    killer.start()
    store = Store(tmp_path / "ray.db")
    try:
        run_study(SPEC, store, executor=RayExecutor(max_retries=2), hooks=[StallOnNode(doomed.node_id, str(folder))])
    finally:
        stop.set()
        killer.join()
    assert list(folder.glob("*.pid"))  # a group did stall on the node that was then removed
    keys = stored_keys(store)
    assert len(keys) == len(set(keys)) == N_TRIALS and store.failed(1) == []
    assert {t["env"]["node_id"] for t in store.trials(1)} == {cluster.head_node.node_id}
    assert same_numbers(store, local_store) == []


def test_cli_without_ray_says_how_to_install(tmp_path):
    """A user without Ray gets one line naming the extra (Ray hidden from the import system)."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from scalelab._cli import main\n"
            f"sys.exit(main(['study', 'run', 'feature-scales', '--executor', 'ray', '--db', r'{tmp_path / 'x.db'}',"
            " '--quiet']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert p.returncode == 2
    assert p.stderr.strip() == "scalelab: error: the Ray executor needs Ray: pip install 'scalelab[ray]'"


def _toml(spec: dict) -> str:
    """The test spec as TOML (values here are numbers, strings and flat lists)."""
    top = [f"{k} = {json.dumps(v)}" for k, v in spec.items() if not isinstance(v, dict)]
    sections = [f"[{k}]\n" + "\n".join(f"{json.dumps(kk) if '.' in kk else kk} = {json.dumps(vv)}"
                                       for kk, vv in v.items())
                for k, v in spec.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(sections) + "\n"


def test_address_where_no_cluster_answers_is_one_line(tmp_path):
    cmd = [sys.executable, "-m", "scalelab", "study", "run", "feature-scales", "--executor", "ray", "--address",
           "127.0.0.1:9", "--db", str(tmp_path / "x.db"), "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().startswith("scalelab: error: no Ray cluster answers at 127.0.0.1:9")
    assert len(p.stderr.strip().splitlines()) == 1


def test_a_cross_validated_study_on_ray_gives_the_local_numbers(cluster, tmp_path):
    """Every stage of a cross-validated study (inner folds, outer folds with the chosen value,
    the test rows; networks, early stopping, a seed ensemble, a scikit-learn estimator) runs
    as Ray tasks and stores what the local executor stores."""
    from test_studies import CV_SPEC

    run_study(CV_SPEC, tmp_path / "local.db")
    store = Store(tmp_path / "ray.db")
    run_study(CV_SPEC, store, executor=RayExecutor())
    local = Store(tmp_path / "local.db", readonly=True)
    assert compare_stores.compare(local, store, CV_SPEC["name"]) == []
    assert {t["env"]["executor"] for t in store.trials(1)} == {"ray"}
    assert len(store.trials(1)) == len(local.trials(1))
