"""Local executor vs Ray: the input-scaling study (real Fashion-MNIST) run once in this
process and once on a Ray cluster, with the same numbers checked (bit-identical stores),
and Ray's scheduling overhead per task measured with empty tasks.

    # two-node local Ray cluster on this machine (Ray's own test cluster), 1 CPU per node
    python benchmarks/ray_scaling.py --epochs 1 --train-subset 12000 --group-size 4 \\
        --out benchmarks/results/ray_scaling_cpu_2core.json
    # a real cluster (started with `ray start --head` / `ray start --address HEAD:6379`)
    python benchmarks/ray_scaling.py --address HEAD:6379 --epochs 5 --group-size 4

Wall times include no cluster start-up (the cluster is up and its workers warm before
timing); the Ray run includes putting the data set in the object store and each node's
first fetch of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ray  # noqa: E402

from compare_stores import compare  # noqa: E402
from scalelab import Store, builtin_spec, run_study  # noqa: E402
from scalelab._ray_executor import RayExecutor  # noqa: E402
from scalelab._study import with_overrides  # noqa: E402


def _noop():
    return None


def task_overhead(n_seq: int = 50, n_batch: int = 400) -> dict:
    """Round trip of an empty task one at a time (latency), and per task when many are in flight."""
    noop = ray.remote(num_cpus=1)(_noop)
    ray.get([noop.remote() for _ in range(20)])  # workers started
    seq = []
    for _ in range(n_seq):
        t = time.perf_counter()
        ray.get(noop.remote())
        seq.append(time.perf_counter() - t)
    t = time.perf_counter()
    ray.get([noop.remote() for _ in range(n_batch)])
    batch = (time.perf_counter() - t) / n_batch
    return dict(empty_task_round_trip_ms_median=1e3 * statistics.median(seq),
                empty_task_ms_per_task_in_batch_of_400=1e3 * batch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", help="join this Ray cluster instead of starting a two-node local one")
    ap.add_argument("--nodes", type=int, default=2, help="local cluster: nodes")
    ap.add_argument("--cpus-per-node", type=int, default=1, help="local cluster: CPUs per node")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-subset", type=int, default=12000, help="0: all 60000 images")
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    sets = [f"train.epochs={a.epochs}", "probes.preset='none'"]
    if a.train_subset:
        sets.append(f"data.train_subset={a.train_subset}")
    spec = with_overrides(builtin_spec("input-scaling"), sets)
    tmp = Path(tempfile.mkdtemp())

    t = time.perf_counter()
    local = Store(tmp / "local.db")
    run_study(spec, local, group_size=a.group_size)
    local_s = time.perf_counter() - t
    t = time.perf_counter()  # what a user gets by default: one process, groups as large as the device likes
    run_study(spec, Store(tmp / "local_default.db"))
    local_default_s = time.perf_counter() - t

    cluster = None
    if a.address:
        ray.init(address=a.address, include_dashboard=False, log_to_driver=False)
    else:
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=a.cpus_per_node,
                                                                    include_dashboard=False))
        for _ in range(a.nodes - 1):
            cluster.add_node(num_cpus=a.cpus_per_node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    overhead = task_overhead()

    t = time.perf_counter()
    remote = Store(tmp / "ray.db")
    run_study(spec, remote, group_size=a.group_size, executor=RayExecutor())
    ray_s = time.perf_counter() - t

    trials = remote.trials(remote.require_study(spec.name)["id"])
    diffs = compare(local, remote, spec.name)
    # Training time (group build and compile included) summed per node; what the busiest
    # node's wall time holds beyond it is Ray's share: scheduling, data transfer, results.
    per_node: dict[str, float] = {}
    tasks: dict[str, set] = {}
    for tr in trials:
        node = tr["env"]["node_id"]
        per_node[node] = per_node.get(node, 0.0) + tr["wall_s"]
        tasks.setdefault(node, set()).add((tr["env"]["pid"], tr["wall_s"]))  # a group's trials share both
    busiest = max(per_node, key=per_node.get)
    n_tasks = -(-len(trials) // a.group_size)
    res = dict(
        command="python benchmarks/ray_scaling.py " + " ".join(sys.argv[1:]),
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(),
                     note="shared 2-core machine with other jobs running: timings are noisy"),
        cluster=dict(address=a.address, nodes=len([n for n in ray.nodes() if n["Alive"]]),
                     cpus=ray.cluster_resources().get("CPU")),
        study=dict(name=spec.name, trials=len(trials), groups=n_tasks, epochs=a.epochs,
                   train_subset=a.train_subset or 60000),
        local_wall_s=local_s, local_default_group_size_wall_s=local_default_s, ray_wall_s=ray_s,
        speedup=local_s / ray_s,
        ray_train_s_sum=sum(t["wall_s"] for t in trials),
        ray_train_s_per_node=sorted(per_node.values()),
        ray_outside_training_s=ray_s - per_node[busiest],
        ray_outside_training_s_per_task=(ray_s - per_node[busiest]) / len(tasks[busiest]),
        nodes_used=len({t["env"]["node_id"] for t in trials}),
        bit_identical=not diffs, **overhead)
    print(json.dumps(res, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    ray.shutdown()
    if cluster is not None:
        cluster.shutdown()
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
