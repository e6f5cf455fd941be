"""How fast is a sweep? The input-scaling MLP (784-128-10, Adam, batch 32) on real Fashion-MNIST.

Times, in one run and interleaved so the ratios share the same machine load:
  (a) a plain single-model PyTorch loop (nn.Module + torch.optim.Adam), as users write it,
      and the same loop flushing denormals (plain_ftz: the part of the gain that is not stacking),
  (b) scalelab's stacked engine with M models trained together,
  (c) real Keras 3 (KERAS_BACKEND=torch) when it is installed,
and reports seconds per model-epoch (median of several timed bursts), the ratios, the
achieved GFLOP/s against a measured sgemm peak, the FLOP+memory floor, peak memory, and
the wall time of the whole input-scaling study from the command line (first with an empty
torch.compile cache, as on a new machine, then again with the cache filled).

    python benchmarks/sweep_speed.py                 # CPU, M = 1, 8, 32, 128
    python benchmarks/sweep_speed.py --json
    python benchmarks/sweep_speed.py --device cuda --models 1,32,256,1024,4096
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import scalelab  # noqa: E402
from scalelab.engine import StackedGroup  # noqa: E402
from scalelab._runtime import flush_denormals  # noqa: E402
from scalelab._spec import expand  # noqa: E402

D, H, C, B = 784, 128, 10, 32
N_TRAIN = 60000
STEPS_PER_EPOCH = N_TRAIN // B
P = D * H + H + H * C + C                       # parameters per model
FLOPS_PER_STEP = 2 * B * (D * H + H * C) * 2 + 2 * B * H * C   # forward + weight grads + layer-2 input grad
ADAM_BYTES_PER_STEP = 8 * 4 * P                 # grad write; p, g, m, v read; p, m, v write (float32)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_sgemm(device, n=2048, reps=10) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def measure_bandwidth(device, n=1 << 24, reps=10) -> float:
    """Triad a = b + 2c on arrays far larger than the caches: GB/s."""
    a, b, c = (torch.randn(n, device=device) for _ in range(3))
    for _ in range(3):
        torch.add(b, c, alpha=2.0, out=a)
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        torch.add(b, c, alpha=2.0, out=a)
        sync(device)
        times.append(time.perf_counter() - t)
    return 3 * 4 * n / statistics.median(times) / 1e9


class Plain:
    """(a) the ordinary way: one nn.Module, torch.optim.Adam, one model at a time. With
    ``ftz`` the same loop flushes denormals as scalelab does (not what users' code does:
    shown to separate that gain from stacking's)."""

    def __init__(self, X, y, device, ftz=False):
        self.ftz = ftz
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C)).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-7)
        self.X, self.y, self.device = X, y, device
        self.perm = torch.randperm(N_TRAIN, device=device)
        self.s = 0
        self.models = 1

    def burst(self, steps):
        with flush_denormals(self.ftz):
            self._burst(steps)

    def _burst(self, steps):
        for _ in range(steps):
            idx = self.perm[(self.s * B) % N_TRAIN:][:B]
            self.s += 1
            x = self.X.index_select(0, idx).float() / 255.0
            loss = torch.nn.functional.cross_entropy(self.net(x), self.y.index_select(0, idx))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


class Stacked:
    """(b) scalelab: M models of the input-scaling study trained as one stacked group."""

    def __init__(self, M, device):
        spec = scalelab.builtin_spec("input-scaling")
        # steady-state speed: compile=True, the warm-up bursts absorb the compile
        spec = spec.model_copy(update={"seeds": list(range(M)), "grid": {},
                                       "input": spec.input.model_copy(update={"scale": 1 / 255}),
                                       "train": spec.train.model_copy(update={"device": str(device),
                                                                              "compile": True})})
        self.g = StackedGroup(expand(spec))
        self.perm = self.g.permutations()
        self.s = 0
        self.models = M

    def burst(self, steps):
        with flush_denormals(self.g.spec.train.flush_denormals):  # as train_group does
            for _ in range(steps):
                st = self.s % STEPS_PER_EPOCH
                self.g.train_step(self.perm[:, st * B:(st + 1) * B])
                self.s += 1


class Keras:
    """(c) real Keras 3 on the torch backend: model.fit on a slice, one model."""

    def __init__(self, X, y):
        import keras

        self.keras = keras
        keras.utils.set_random_seed(0)
        self.model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(H, activation="relu"),
                                       keras.layers.Dense(C, activation="softmax")])
        self.model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        self.X, self.y = X, y
        self.models = 1

    def burst(self, steps):
        n = steps * B
        self.model.fit(self.X[:n], self.y[:n], batch_size=B, epochs=1, verbose=0, shuffle=True)


def time_burst(runner, steps, device) -> float:
    sync(device)
    t = time.perf_counter()
    runner.burst(steps)
    sync(device)
    return time.perf_counter() - t


def study_wall(device) -> tuple[float, float]:
    """The whole study from the command line: first with an empty torch.compile cache (what a
    first run on a new machine sees), then again with the cache that run filled."""
    walls = []
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=f"{d}/inductor")
        for run in ("cold", "warm"):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "scalelab", "study", "run", "input-scaling", "--db", f"{d}/{run}.db",
                            "--device", str(device), "--quiet"], check=True, env=env)
            walls.append(time.perf_counter() - t)
    return walls[0], walls[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="1,8,32,128", help="comma-separated M values for the stacked engine")
    ap.add_argument("--steps", type=int, default=60, help="steps per timed burst")
    ap.add_argument("--reps", type=int, default=5, help="timed bursts per runner (the median is reported)")
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument("--no-study", action="store_true", help="skip timing the whole input-scaling study")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)

    ds = scalelab.load_fashion_mnist()
    X = torch.as_tensor(ds.X_train).to(device)
    y = torch.as_tensor(ds.y_train).to(device)
    runners = {"plain": Plain(X, y, device)}
    if device.type == "cpu":
        runners["plain_ftz"] = Plain(X, y, device, ftz=True)
    for M in [int(m) for m in args.models.split(",")]:
        runners[str(M)] = Stacked(M, device)
    keras_ok = False
    if not args.no_keras and device.type == "cpu":
        try:
            runners["keras"] = Keras(ds.X_train.astype(np.float32) / 255.0, ds.y_train)
            keras_ok = True
        except ImportError:
            pass

    # warm up (compilation, caches), then interleave the timed bursts
    for r in runners.values():
        r.burst(max(5, args.steps // 4))
    times = {k: [] for k in runners}
    for _ in range(args.reps):
        for k, r in runners.items():
            steps = args.steps if k != "keras" else max(20, args.steps // 2)
            times[k].append(time_burst(r, steps, device) / steps)
    per_model_epoch = {k: statistics.median(v) * STEPS_PER_EPOCH / runners[k].models for k, v in times.items()}

    sgemm = measure_sgemm(device)
    bw = measure_bandwidth(device)
    floor = STEPS_PER_EPOCH * (FLOPS_PER_STEP / (sgemm * 1e9) + ADAM_BYTES_PER_STEP / (bw * 1e9))
    stacked = {k: v for k, v in per_model_epoch.items() if k.isdigit()}
    plain_ftz = per_model_epoch.get("plain_ftz")
    result = dict(
        device=str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                              f" ({torch.get_num_threads()} threads)"),
        per_model_epoch_s=dict(plain=per_model_epoch["plain"], keras=per_model_epoch.get("keras") if keras_ok else None,
                               stacked=stacked, plain_ftz=plain_ftz),
        ratio_vs_plain={m: per_model_epoch["plain"] / v for m, v in stacked.items()},
        ratio_vs_plain_ftz={m: plain_ftz / v for m, v in stacked.items()} if plain_ftz else None,
        ratio_vs_keras={m: per_model_epoch["keras"] / v for m, v in stacked.items()} if keras_ok else None,
        floor_s=floor,
        ratio_to_floor={m: v / floor for m, v in stacked.items()},
        achieved_gflops={m: FLOPS_PER_STEP * STEPS_PER_EPOCH / v / 1e9 for m, v in stacked.items()},
        sgemm_gflops=sgemm,
        bandwidth_gbs=bw,
        compiled={m: runners[m].g.compiled for m in stacked},
        peak_memory_mb=(torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        study_wall_s=None,                  # with an empty compile cache
        study_wall_warm_s=None,             # again, the compile cache filled

        command="python " + " ".join(sys.argv),
    )
    if not args.no_study:
        result["study_wall_s"], result["study_wall_warm_s"] = study_wall(device)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"device: {result['device']}   sgemm peak {sgemm:.0f} GFLOP/s   triad {bw:.1f} GB/s")
    print(f"floor (FLOPs at sgemm peak + Adam traffic at triad bandwidth): {floor:.3f} s per model-epoch")
    print(f"{'runner':>10} {'s/model-epoch':>14} {'vs plain':>9} {'vs keras':>9} {'vs floor':>9} {'GFLOP/s':>8}")
    for k, v in per_model_epoch.items():
        row = f"{('M=' + k) if k.isdigit() else k:>10} {v:14.3f} {per_model_epoch['plain'] / v:9.2f}"
        row += f" {per_model_epoch['keras'] / v:9.2f}" if keras_ok else f" {'-':>9}"
        row += f" {v / floor:9.2f} {FLOPS_PER_STEP * STEPS_PER_EPOCH / v / 1e9:8.1f}"
        print(row)
    print(f"peak memory: {result['peak_memory_mb']:.0f} MB")
    if result["study_wall_s"] is not None:
        print(f"whole input-scaling study (15 trials x 5 epochs, evaluation and probes included): "
              f"{result['study_wall_s']:.1f} s with an empty compile cache, {result['study_wall_warm_s']:.1f} s again")


if __name__ == "__main__":
    main()
