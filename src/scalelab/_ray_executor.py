"""Groups as Ray tasks: on a local Ray instance or a user's cluster.

Each stacked group is one task with a resource request (CPUs, a GPU fraction on CUDA, a
memory estimate from the group's size). Data sets go into Ray's object store once and
tasks receive references, so each node fetches a data set once, and every worker on it
maps the same shared-memory copy. Results stream back to the driver, which alone writes
the store. A worker or node that dies mid-group is retried by Ray (``max_retries``);
a group that still cannot finish, or whose training raises, comes back as failed trials
with the reason, and the next run of the same command tries them again.

Ray is imported only when this executor is made.
"""

from __future__ import annotations

import math
import os
import platform
from typing import Callable, Iterable

from ._spec import Trial
from .engine import TrialResult

INSTALL_HINT = "the Ray executor needs Ray: pip install 'scalelab[ray]'"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return ray


def estimate_memory(group: list[Trial], X_train) -> int:
    """Bytes a group needs on its worker (an estimate for Ray's scheduler): the torch
    runtime; the training inputs on the device (uint8 images stay uint8, other inputs pass
    through a float64 copy); evaluation chunks (about 2**24 values each, see
    ``engine._evaluate``); per model its parameters, gradients, optimizer moments and update,
    and a batch of forward and backward activations. Measured: one process training the 15
    models of input-scaling peaked at 784 MB resident (about 600 MB of it torch, compiled
    step included); this estimates 819 MB."""
    s = group[0].spec
    M = len(group)
    n_features = X_train[0].size
    sizes = [n_features, *s.model.hidden, 10]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    data = X_train.size * (1 if X_train.dtype.itemsize == 1 else 12) + 2 * 4 * 2 ** 24
    model = 4 * M * (5 * n_params + 4 * s.train.batch_size * sum(sizes))
    return int(600e6 + data + model)


def _worker_env(device: str) -> dict:
    import ray

    from .engine import environment

    env = environment(device)
    env.update(executor="ray", host=platform.node(), node_id=ray.get_runtime_context().get_node_id(),
               pid=os.getpid())
    return env


def run_group(group: list[Trial], data_dir, device, hooks, threads: int, train, data_keys: list[str], *datasets):
    """The task body, on a worker: seed the data cache from the object store, train, return
    the results with where they ran. ``datasets`` are resolved object-store references."""
    import warnings

    import torch

    from .data import _registry as _splits
    from .engine import train_unit

    for key, ds in zip(data_keys, datasets):
        _splits._DATA_CACHE[key] = ds  # the node's shared copy: the worker does not load or copy it
    # Its arrays are read-only (shared memory) and training only reads them.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    torch.set_num_threads(threads)
    results = (train or train_unit)(group, data_dir, device, hooks)
    env = _worker_env(device or group[0].spec.train.device)
    for r in results:
        r.env = env
    return results


class RayExecutor:
    """Runs each group as a Ray task; ``address=None`` starts a local Ray instance (or uses
    the one this process already joined), an address (``HOST:6379`` or ``auto``) joins a cluster."""

    reports_steps = False  # the driver's progress bar counts finished trials instead

    def __init__(self, data_dir: str | None = None, device: str | None = None, address: str | None = None,
                 cpus_per_group: float = 1, gpu_fraction: float = 1.0, max_retries: int = 3,
                 memory: bool = True):
        if cpus_per_group <= 0:
            raise ValueError(f"cpus_per_group = {cpus_per_group}: must be positive (e.g. 1)")
        if max_retries < 0:
            raise ValueError(f"max_retries = {max_retries}: must be 0 or more (e.g. 3)")
        if not 0 < gpu_fraction <= 1:
            raise ValueError(f"gpu_fraction = {gpu_fraction}: must be in (0, 1], e.g. 0.5 for two groups per GPU")
        self.ray = _import_ray()
        self.data_dir, self.device, self.address = data_dir, device, address
        self.cpus, self.gpu_fraction, self.max_retries, self.memory = cpus_per_group, gpu_fraction, max_retries, memory
        self.data_refs: dict = {}  # data set key -> object reference, one ray.put per data set
        self.puts = 0

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        _check_reachable(self.address)
        try:
            ray.init(address=self.address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        except ConnectionError as e:
            raise ValueError(f"cannot join the Ray cluster at {self.address!r} ({e}); start one with "
                             f"`ray start --head` or leave out --address for a local instance") from None

    def _data(self, group: list[Trial]) -> tuple[list[str], list]:
        from .data import dataset_key, load_dataset

        data = group[0].spec.data  # a group shares its data section (it is part of the group key)
        traj = getattr(group[0].spec, "trajectory", None)
        key = dataset_key(data, self.data_dir, traj)
        if key not in self.data_refs:
            self.data_refs[key] = self.ray.put(load_dataset(data, self.data_dir, traj))
            self.puts += 1
        return [key], [self.data_refs[key]]

    def resources(self, group: list[Trial]) -> dict:
        """The Ray resource request of one group's task."""
        from .data import trial_split

        # The workers' devices count, not the driver's: "auto" asks for a GPU when the cluster has one.
        name = self.device or group[0].spec.train.device
        gpu = name.startswith("cuda") or (name == "auto" and self.ray.cluster_resources().get("GPU", 0) > 0)
        req = dict(num_cpus=self.cpus, num_gpus=self.gpu_fraction if gpu else 0)
        if self.memory:
            req["memory"] = estimate_memory(group, trial_split(group[0].spec, self.data_dir)[1].X_train)
        return req

    def _check_fits(self, reqs: list[dict]) -> None:
        """A task no node can hold would wait forever: say so now, in one line."""
        nodes = [n["Resources"] for n in self.ray.nodes() if n["Alive"]]
        names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
        for req in reqs:
            if not any(all(n.get(names[k], 0) >= v for k, v in req.items() if v) for n in nodes):
                have = [{names[k]: n.get(names[k], 0) for k in req} for n in nodes]
                raise ValueError(f"no node of the Ray cluster can run a group needing {req} (nodes have {have}); "
                                 f"use a smaller --group-size or start nodes with more resources")

    def run(self, groups: Iterable[list[Trial]], on_result: Callable[[TrialResult], None],
            hooks: Iterable[Callable] = (), train: Callable | None = None) -> None:
        """Each group as a task; ``train``: the study kind's call for a unit (see LocalExecutor.run)."""
        ray = self.ray
        self._connect()
        groups, hooks = list(groups), list(hooks)
        reqs = [self.resources(g) for g in groups]
        self._check_fits(reqs)
        task = ray.remote(run_group)
        threads = max(1, math.floor(self.cpus))
        pending = {}
        for group, req in zip(groups, reqs):
            keys, refs = self._data(group)
            ref = task.options(max_retries=self.max_retries, retry_exceptions=False, **req).remote(
                group, self.data_dir, self.device, hooks, threads, train, keys, *refs)
            pending[ref] = group
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                group = pending.pop(ref)
                for result in self._collect(ref, group):
                    on_result(result)

    def _collect(self, ref, group: list[Trial]) -> list[TrialResult]:
        from . import __version__

        exc = self.ray.exceptions
        try:
            results = self.ray.get(ref)
        except exc.RayTaskError as e:  # training raised: deterministic, a retry would raise again
            cause = e.cause if getattr(e, "cause", None) is not None else e
            return _failed(group, f"training raised {type(cause).__name__}: {_last_line(cause)}")
        except exc.RayError as e:  # the worker or its node died on every attempt
            return _failed(group, f"{type(e).__name__} after {self.max_retries + 1} attempt(s): {_last_line(e)}")
        if results and results[0].env.get("scalelab") != __version__:
            raise ValueError(f"the Ray workers run scalelab {results[0].env.get('scalelab')} but this driver runs "
                             f"{__version__}; install the same version on every node")
        return results


def _check_reachable(address: str | None) -> None:
    """Ray keeps retrying an address where nothing listens, for minutes: try it once first."""
    if not address or address == "auto":
        return
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except ValueError:
        raise ValueError(f"--address {address!r}: expected HOST:PORT, e.g. 10.0.0.1:6379 (or auto)") from None
    except OSError as e:
        raise ValueError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one there with "
                         f"`ray start --head --port {port}` or check the address") from None


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else repr(e)


def _failed(group: list[Trial], reason: str) -> list[TrialResult]:
    return [TrialResult(t, "failed", None, [], 0.0, reason=reason, env={"executor": "ray"}) for t in group]
