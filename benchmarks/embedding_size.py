"""Why a 2M-word trainable embedding slows training (seed 003, second thread), measured to the byte.

The thread's model: trainable embedding (V words × d) → LSTM(128) → softmax over 2 classes,
Adam, batch 32, sequences of 50 ids. One step touches at most 32·50 = 1600 rows of the table
whatever V is; this benchmark times one training step per update rule and vocabulary, split
into phases, and computes the bytes of parameters and optimizer state each step reads and
writes:

* ``dense_adam``: the engine's default (as Keras and torch do): the table's gradient is a
  dense (V, d) tensor (zero-filled, then the used rows added), and Adam reads p, g, m, v and
  writes p, m, v for every row: 28·V·d bytes in the update (float32) + 4·V·d to form the
  gradient. The update is the engine's fused Adam kernel, compiled (one loop over memory).
* ``lazy_adam``: the engine's row-sparse step: the used rows U are gathered before the
  forward, autograd gives their (U, d) gradient, lazy Adam updates p, m, v of those rows
  (TensorFlow Addons' LazyAdam): 28·U·d + 12·U·d (gather copy and gradient).
* ``sparse_adam``: torch's own sparse path: nn.Embedding-style lookup with ``sparse=True``
  (a COO gradient of B·T rows, coalesced) and ``torch.optim.SparseAdam``.
* ``sgd``: the engine's sparse SGD (``sparse_sgd``): p[rows] -= lr·g[rows]: 12·U·d + 12·U·d.

The LSTM and head (≈ 4·128·(d+128) values) take dense Adam (SGD for ``sgd``) in every
variant; their bytes are counted too. Phases: ``forward`` (row gathering, lookup, LSTM,
loss), ``backward`` (autograd, including forming the table's gradient), ``optimizer``.
``bytes_per_step`` is all table/state traffic of a step (gradient forming + update);
``update_bytes`` the optimizer's part; ``achieved_gbs`` = update_bytes / optimizer time, the
bandwidth the update reached, against ``bandwidth_gbs``: the best of three streaming
kernels measured in the same process (read-only sum, copy counted as 2 streams, in-place
``a += b`` counted as 3), at the start and at the end of the run. ``peak_rss_gb`` is the process's peak resident set during the
configuration (VmHWM after a reset; glibc keeps freed blocks, so it includes earlier
configurations' freed heap: compare ``state_gb``, the computed size of table, gradient and
moments). With Keras 3 installed, the same model is timed in real Keras (torch backend,
``model.fit``, Adam) in a subprocess per vocabulary.

    python benchmarks/embedding_size.py [--sizes 20000,200000,2000000] [--dims 64,200]
        [--steps 8] [--no-keras] [--json]

``--json`` prints one JSON object: step_s[UPDATE][V] (median seconds per step), bytes_per_step,
achieved_gbs (the same keys), bandwidth_gbs, and phases, update_bytes, peak_rss_gb, keras_step_s,
checks; these top-level tables are for the largest d; ``by_dim`` holds every d.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from scalelab._runtime import tune_malloc  # noqa: E402
from scalelab.data._text import make_text  # noqa: E402
from scalelab.engine._rows import gather_rows  # noqa: E402
from scalelab.models import Dense, Embedding, Lstm, Model, Pass  # noqa: E402
from scalelab.optim import FusedOptimizer  # noqa: E402

B, T, H, K = 32, 50, 128, 2
UPDATES = ("dense_adam", "lazy_adam", "sparse_adam", "sgd")
F32 = 4


# ----------------------------------------------------------------------------- memory

def bandwidth() -> dict:
    """Streaming bandwidth of this process (GB/s), best of 5, over 2 × 256 MiB float32."""
    n = 64 * 2 ** 20
    a, b = torch.ones(n), torch.full((n,), 2.0)
    out = {}
    for name, fn, streams in (("read", lambda: a.sum(), 1), ("copy", lambda: a.copy_(b), 2),
                              ("add_inplace", lambda: a.add_(b), 3)):
        best = min(_time(fn) for _ in range(5))
        out[name] = streams * n * F32 / best / 1e9
    a.fill_(1.0)
    del a, b
    return out


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _release():
    """Hand freed memory back to the kernel (tune_malloc keeps it otherwise), so that the
    next configuration's peak is its own and a 2M-word Keras run has room."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2 ** 20
    return float("nan")


# ----------------------------------------------------------------------------- the model

def batches(V: int, n: int, seed: int = 0):
    """n batches of Zipf text over V words (the scalelab text generator): ids (1, B, T), labels (1, B)."""
    ds = make_text(n * B, 1, seed=seed, vocab=V, steps=T)
    X = torch.as_tensor(ds.X_train).view(n, 1, B, T)
    y = torch.as_tensor(ds.y_train).view(n, 1, B)
    return X, y


def build(V: int, d: int, update: str):
    emb, lstm, head = Embedding(0, T, V, d), Lstm(0, T * d, H, T), Dense(1, H, K)
    rng = np.random.default_rng(0)
    rest = {**lstm.init(rng, "glorot_uniform", 1.0, "zeros"), **head.init(rng, "glorot_uniform", 1.0, "zeros")}
    params = {k: torch.as_tensor(v[None], dtype=torch.float32).contiguous() for k, v in rest.items()}
    table = torch.empty(1, V, d).uniform_(-0.05, 0.05)
    table[:, 0] = 0.0
    params = {"embedding0.W": table, **params}
    lr = 0.1 if update == "sgd" else 1e-3
    one = lambda v: {n: torch.full((1, 1, 1), v) for n in params}  # noqa: E731
    hp = dict(lr=one(lr), b1=one(0.9), b2=one(0.999), eps=one(1e-7), wd=one(0.0), keras=one(1.0), mom=one(0.0))
    return Model([emb, lstm, head]), emb, lstm, head, params, hp


def recurrent(lstm: Lstm, kind: str):
    """The LSTM of the step: scalelab's layer as the engine runs it (``engine``: vmap of its
    one-model recurrence, a Python loop over the 50 steps) or the same parameters through
    torch's native LSTM kernel (``fused``: what Keras and torch users run; equal in float64,
    tests/test_lstm.py)."""
    if kind == "engine":
        return lambda params, x, p: lstm.forward(params, x, p)

    def fused(params, x, p):
        W, U, b = params[lstm.weight][0], params[lstm.recurrent][0], params[lstm.bias][0].reshape(-1)
        Bn = x.shape[1]
        h0 = x.new_zeros(1, Bn, lstm.units)
        _, h, _ = torch._VF.lstm(x.view(Bn, lstm.steps, lstm.features), (h0, h0), [W.t(), U.t(), b, torch.zeros_like(b)],
                                 True, 1, 0.0, True, False, True)
        return h                                                    # (1, batch, units): the model axis M = 1
    return fused


def run(update: str, V: int, d: int, steps: int, warmup: int = 2, lstm_kind: str = "fused") -> dict:
    _, emb, lstm, head, params, hp = build(V, d, update)
    seq = recurrent(lstm, lstm_kind)
    X, Y = batches(V, steps + warmup)
    name = "embedding0.W"
    n_rest = sum(p.numel() for k, p in params.items() if k != name)
    sparse_torch = update == "sparse_adam"
    if update == "dense_adam":
        opt = FusedOptimizer("adam", params, hp, compile=True)
        params[name].requires_grad_()
    elif sparse_torch:
        table = torch.nn.Parameter(params.pop(name)[0])                       # (V, d): torch's sparse path
        sparse_opt = torch.optim.SparseAdam([table], lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        opt = FusedOptimizer("adam", params, {k: {n: v[n] for n in params} for k, v in hp.items()}, compile=True)
    else:
        opt = FusedOptimizer("lazy_adam" if update == "lazy_adam" else "sparse_sgd", params, hp, compile=True)
    for k, p in params.items():
        if k != name:
            p.requires_grad_()
    times, used = [], []
    _reset_peak()
    for s in range(steps + warmup):
        ids, y = X[s], Y[s]
        t0 = time.perf_counter()
        p = Pass(1, True)
        if update == "dense_adam":
            x = emb.forward(params, ids, p)
            leaves, rows = [params[n] for n in opt.names], None
        elif sparse_torch:
            x = (F.embedding(ids[0], table, sparse=True) * (ids[0] != 0).unsqueeze(-1)).reshape(1, B, T * d)
            leaves, rows = [table, *(params[n] for n in opt.names)], None
        else:
            entries, rows = gather_rows(params, {name: emb}, ids)
            p.rows = entries
            x = emb.forward(params, ids, p)
            leaves = [entries[n][0] if n in entries else params[n] for n in opt.names]
        out = head.forward(params, seq(params, x, p), p)
        loss = F.cross_entropy(out[0], y[0])
        t1 = time.perf_counter()
        grads = torch.autograd.grad(loss, leaves)
        t2 = time.perf_counter()
        with torch.no_grad():
            if sparse_torch:
                table.grad = grads[0]
                sparse_opt.step()
                table.grad = None
                opt.step(params, dict(zip(opt.names, grads[1:])))
            else:
                opt.step(params, dict(zip(opt.names, grads)), rows)
        t3 = time.perf_counter()
        if s >= warmup:
            times.append((t1 - t0, t2 - t1, t3 - t2))
            used.append(int(ids.unique().numel()))
    peak = _peak_gb()
    fwd, bwd, upd = (statistics.median(x) for x in zip(*times))
    step = statistics.median(sum(x) for x in times)
    U = statistics.mean(used)
    rest_upd = (12 if update == "sgd" else 28) * n_rest               # dense update of LSTM + head
    if update == "dense_adam":
        update_bytes = 28 * V * d + rest_upd
        grad_bytes = F32 * V * d + 2 * F32 * B * T * d                 # zero-fill, then add the lookups' rows
    elif update == "lazy_adam":
        update_bytes = 28 * U * d + rest_upd
        grad_bytes = 3 * F32 * U * d                                   # gather (read, write), row gradient
    elif update == "sparse_adam":
        update_bytes = 28 * U * d + rest_upd
        grad_bytes = F32 * B * T * d + 2 * F32 * B * T * d + F32 * U * d   # COO values, coalesce, coalesced rows
    else:
        update_bytes = 12 * U * d + rest_upd
        grad_bytes = 3 * F32 * U * d
    moments = {"dense_adam": 2, "lazy_adam": 2, "sparse_adam": 2, "sgd": 0}[update]
    state_gb = F32 * V * d * (1 + moments + (update == "dense_adam")) / 1e9
    del params, opt, X, Y, grads, leaves, out, loss
    if sparse_torch:
        del table, sparse_opt
    _release()
    return dict(step_s=step, phases=dict(forward=fwd, backward=bwd, optimizer=upd), rows=U,
                bytes_per_step=update_bytes + grad_bytes, update_bytes=update_bytes,
                achieved_gbs=update_bytes / upd / 1e9, peak_rss_gb=peak, state_gb=state_gb)


# ----------------------------------------------------------------------------- Keras

def keras_one(V: int, d: int, steps: int) -> dict:
    """The thread's model in real Keras 3: Embedding → LSTM(128) → Dense(2, softmax), Adam,
    model.fit; median seconds per batch over the second epoch."""
    import keras

    X, Y = batches(V, steps)
    X, Y = X.reshape(-1, T).numpy(), Y.reshape(-1).numpy()
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((T,), dtype="int32"), keras.layers.Embedding(V, d),
                          keras.layers.LSTM(H), keras.layers.Dense(K, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t)

    _reset_peak()
    m.fit(X, Y, batch_size=B, epochs=2, verbose=0, shuffle=False, callbacks=[Clock()])
    return dict(step_s=statistics.median(times[steps:]), backend=keras.backend.backend(), version=keras.__version__,
                peak_rss_gb=_peak_gb())


def keras_available() -> bool:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    r = subprocess.run([sys.executable, "-c", "import keras"], env=env, capture_output=True)
    return r.returncode == 0


def keras_run(V: int, d: int, steps: int) -> dict | None:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    r = subprocess.run([sys.executable, __file__, "--keras-one", f"{V},{d},{steps},{torch.get_num_threads()}"], env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        return dict(error=r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main

def _ints(s: str) -> list[int]:
    return [int(float(x)) for x in s.split(",") if x]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_ints, default=[20000, 200000, 2000000])
    ap.add_argument("--dims", type=_ints, default=[64, 200])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--updates", default=",".join(UPDATES))
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument("--keras-dims", type=_ints, default=None, help="dims to time in Keras (default: the largest)")
    ap.add_argument("--lstm", choices=("fused", "engine"), default="fused",
                    help="the LSTM: torch's native kernel (default) or scalelab's layer as the engine runs it")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="also write the JSON object to this file")
    ap.add_argument("--keras-one", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.keras_one:
        V, d, steps, threads = _ints(a.keras_one)
        torch.set_num_threads(threads)
        print(json.dumps(keras_one(V, d, steps)))
        return {}
    tune_malloc()                                   # as the engine does
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    updates = [u for u in a.updates.split(",") if u]
    bw = bandwidth()
    res = dict(bandwidth_gbs=max(bw.values()), bandwidth_kernels_gbs=bw, threads=torch.get_num_threads(),
               torch=torch.__version__, load_before=os.getloadavg(), batch=B, seq_len=T, lstm_units=H,
               steps=a.steps, lstm=a.lstm, by_dim={})
    keras_dims = a.keras_dims if a.keras_dims is not None else [max(a.dims)]
    use_keras = not a.no_keras and keras_available()
    for d in a.dims:
        tab = {k: {u: {} for u in updates} for k in ("step_s", "bytes_per_step", "achieved_gbs", "update_bytes",
                                                    "phases", "peak_rss_gb", "state_gb", "rows")}
        tab["keras_step_s"] = {}
        for V in a.sizes:
            for u in updates:
                r = run(u, V, d, a.steps, lstm_kind=a.lstm)
                for k in ("step_s", "bytes_per_step", "achieved_gbs", "update_bytes", "phases", "peak_rss_gb",
                          "state_gb", "rows"):
                    tab[k][u][str(V)] = r[k]
                if not a.json:
                    ph = r["phases"]
                    print(f"d={d:4d} V={V:>8d} {u:12s} step {r['step_s'] * 1e3:8.1f} ms  (fwd {ph['forward'] * 1e3:6.1f}"
                          f" bwd {ph['backward'] * 1e3:6.1f} opt {ph['optimizer'] * 1e3:7.1f})  "
                          f"{r['bytes_per_step'] / 1e6:9.1f} MB/step  update {r['achieved_gbs']:5.2f} GB/s  "
                          f"peak {r['peak_rss_gb']:.2f} GB", flush=True)
            if use_keras and d in keras_dims:
                kr = keras_run(V, d, max(a.steps, 10))
                tab["keras_step_s"][str(V)] = kr
                if not a.json:
                    print(f"d={d:4d} V={V:>8d} keras        {kr}", flush=True)
        res["by_dim"][str(d)] = tab
    res["load_after"] = os.getloadavg()
    # measured again at the end: other processes' memory traffic varies, the best is the machine's
    bw_end = bandwidth()
    res["bandwidth_kernels_end_gbs"] = bw_end
    res["bandwidth_gbs"] = max(res["bandwidth_gbs"], *bw_end.values())
    top = res["by_dim"][str(max(a.dims))]
    res.update({k: top[k] for k in ("step_s", "bytes_per_step", "achieved_gbs", "update_bytes", "phases",
                                    "peak_rss_gb", "state_gb", "keras_step_s")})
    res["checks"] = checks(res, a.sizes)
    res["command"] = "python benchmarks/embedding_size.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    if a.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res["checks"], indent=1))
        print(f"bandwidth {res['bandwidth_gbs']:.2f} GB/s (start {bw}, end {bw_end}); load {res['load_before']} → {res['load_after']}")
    return res


def checks(res: dict, sizes: list[int]) -> dict:
    """The issue's acceptance ratios, where the sizes include 2e5 and 2e6."""
    if not {200000, 2000000} <= set(sizes):
        return {}
    s = res["step_s"]
    out = {}
    lo, hi = "200000", "2000000"
    if "dense_adam" in s:
        out["dense_adam_2e6_over_2e5"] = s["dense_adam"][hi] / s["dense_adam"][lo]
        out["dense_update_bandwidth_share"] = res["achieved_gbs"]["dense_adam"][hi] / res["bandwidth_gbs"]
    for u in ("lazy_adam", "sparse_adam", "sgd"):
        if u in s:
            out[f"{u}_2e6_over_2e5"] = s[u][hi] / s[u][lo]
    if "lazy_adam" in s and "dense_adam" in s:
        out["dense_over_lazy_at_2e6"] = s["dense_adam"][hi] / s["lazy_adam"][hi]
    k = res.get("keras_step_s") or {}
    if all(isinstance(k.get(v), dict) and "step_s" in k[v] for v in (lo, hi)):
        out["keras_2e6_over_2e5"] = k[hi]["step_s"] / k[lo]["step_s"]
    return out


if __name__ == "__main__":
    main()
