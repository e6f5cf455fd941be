"""The study path's overheads removed without changing a number (issue 23): the epoch sums
taken once per epoch, uncompressed checkpoints, the on-disk cache of verified data sets, the
device choice and the progress rate."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from scalelab.data import DataError
from scalelab.data import _cache as _datacache
from scalelab.data._fashion_mnist import DEBIAN_DIR, load_fashion_mnist
from scalelab._progress import PlainProgress
from scalelab._spec import expand, parse_spec
from scalelab._store._checkpoint_blob import decode, encode
from scalelab.engine import train_group
from scalelab.engine._loop import _count_hits, _epoch_sums
from scalelab.engine._plan import auto_group_size, default_group_size, gpu_group_size, resolve_device


def running_sums(losses, sizes, hits, first_bad):
    """The engine's former per-step accumulation, step by step on tensors (the oracle)."""
    M = losses[0].shape[0]
    loss_sum = torch.zeros(M, dtype=torch.float64)
    correct = torch.zeros(M, dtype=torch.float64)
    step = 0
    for loss, b, h in zip(losses, sizes, hits):
        step += 1
        loss_sum += loss.double() * b
        correct += h.double()
        bad = ~torch.isfinite(loss)
        first_bad = torch.where(bad & (first_bad < 0), step, first_bad)
    return loss_sum.numpy(), correct.numpy(), first_bad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_epoch_sums_equal_the_step_by_step_running_sum_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    steps, M = 1875, 6
    losses = [torch.as_tensor(rng.lognormal(0, 2, M), dtype=dtype) for _ in range(steps)]
    losses[700][2] = float("nan")       # model 2 diverges at step 701, model 4 at 1200 (inf)
    losses[900][2] = float("inf")
    losses[1199][4] = float("inf")
    sizes = [32] * (steps - 1) + [17]   # a short last batch
    hits = [torch.as_tensor(rng.integers(0, 33, M)) for _ in range(steps)]
    first_bad = torch.tensor([-1, -1, -1, -1, -1, 5])   # model 5 diverged in an earlier epoch
    want_loss, want_correct, want_bad = running_sums(losses, sizes, hits, first_bad)
    got_loss, got_correct, got_bad = _epoch_sums(losses, sizes, hits, 0, first_bad)
    assert got_loss.tobytes() == want_loss.tobytes()          # the same bits, NaN included
    assert np.array_equal(got_correct, want_correct)
    assert got_bad.tolist() == want_bad.tolist() == [-1, -1, 701, -1, 1200, 5]
    # a later epoch: step numbers continue from the steps before it
    _, _, later = _epoch_sums(losses, sizes, hits, 3750, torch.full((M,), -1))
    assert later.tolist() == [-1, -1, 4451, -1, 4950, -1]


def test_correct_predictions_counted_64_steps_at_a_time_equal_the_per_step_counts():
    rng = np.random.default_rng(1)
    M, C, sizes = 5, 10, [32] * 150 + [7]                # 150 full batches and a short last one
    steps = [(torch.as_tensor(rng.normal(size=(M, b, C)), dtype=torch.float32),
              torch.as_tensor(rng.integers(0, C, (M, b)))) for b in sizes]
    pending, hits = [], []
    for out, y in steps:
        _count_hits(pending, hits, out, y)
    _count_hits(pending, hits)
    want = sum((out.argmax(-1) == y).sum(1) for out, y in steps)
    assert len(hits) == 4 and torch.equal(torch.stack(hits).sum(0), want)   # 64 + 64 + 22 + the short one


def digits(**over):
    d = {"name": "ck", "seeds": 2, "profile": "keras", "data": {"dataset": "digits", "validation": 200},
         "model": {"hidden": [16]}, "train": {"batch_size": 64, "epochs": 3}}
    return expand(parse_spec(d | over))


def compressed(state) -> bytes:
    """A checkpoint as written before (np.savez_compressed)."""
    buf = io.BytesIO()
    meta = np.frombuffer(json.dumps(state["meta"]).encode(), np.uint8)
    np.savez_compressed(buf, __meta__=meta, **state["tensors"])
    return buf.getvalue()


def test_checkpoints_are_stored_uncompressed_and_old_compressed_ones_resume_identically():
    trials = digits()
    blobs = {}   # encoded at once, as the store does: the state's arrays change with training
    whole = train_group(trials, checkpoint=lambda e, s: blobs.setdefault(e, (encode(s), compressed(s))))
    new, old = blobs[1]
    with zipfile.ZipFile(io.BytesIO(new)) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    assert len(old) < len(new)
    for b in (new, old):
        again = train_group(trials, start=decode(b))
        for r, w in zip(again, whole):
            assert r.epochs == w.epochs and r.probes == w.probes


REAL = Path(DEBIAN_DIR)
needs_real = pytest.mark.skipif(not (REAL / "train-labels-idx1-ubyte.gz").exists(),
                                reason="real Fashion-MNIST not installed")


@needs_real
def test_verified_fashion_mnist_is_cached_once_per_file_version(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "fm"
    shutil.copytree(REAL, data)
    first = load_fashion_mnist(data)
    entries = list((tmp_path / "cache").glob("fashion-mnist-*.npz"))
    assert len(entries) == 1
    # the same file versions are read from the cache: a file damaged in place that keeps its
    # size and time is not read again (verified once per version, by design)...
    labels = data / "train-labels-idx1-ubyte.gz"
    st = labels.stat()
    raw = bytearray(labels.read_bytes())
    raw[100] ^= 0xFF
    labels.write_bytes(bytes(raw))
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns))
    cached = load_fashion_mnist(data)
    for k in ("X_train", "y_train", "X_test", "y_test"):
        assert np.array_equal(getattr(cached, k), getattr(first, k))
        assert getattr(cached, k).dtype == getattr(first, k).dtype
    # ...and a new version (a new modification time) is read and verified again
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DataError):
        load_fashion_mnist(data)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_a_small_data_set_is_not_cached_and_an_unwritable_cache_is_ignored(tmp_path, fake_fmnist, monkeypatch):
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    files = sorted(fake_fmnist.iterdir())
    assert _datacache.version_key("x", files) is None          # under MIN_BYTES: read directly
    monkeypatch.setattr(_datacache, "MIN_BYTES", 0)
    key = _datacache.version_key("x", files)
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder should be")
    _datacache.store(key, {"a": np.arange(3)})                 # cannot be written: no error
    assert _datacache.load(key) is None


def test_auto_device_picks_cuda_when_present_and_sizes_groups_for_its_memory():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    # 784-128-10 MLP, batch 32: 4 * (6 * 101770 + 4 * 32 * 784) = 2,843,728 bytes per model
    assert gpu_group_size(140 * 2**30, 101770, 784, 32) == 4096              # capped
    assert gpu_group_size(8 * 2**30, 101770, 784, 32) == 4 * 2**30 // 2843728 == 1510
    assert gpu_group_size(10**6, 101770, 784, 32) == 1                      # at least one model
    assert auto_group_size(101770, 784, 32, torch.device("cpu")) == 32
    trial = digits()[0]
    want = 32 if not torch.cuda.is_available() else auto_group_size(
        64 * 16 + 16 + 16 * 10 + 10, 64, 64, torch.device("cuda"))
    assert default_group_size(trial, device="auto") == want


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_device_trains_on_the_gpu():
    r = train_group(digits(train={"batch_size": 64, "epochs": 1, "device": "auto"}))
    assert np.isfinite(r[0].epochs[-1]["val_loss"])


def test_progress_line_shows_model_epochs_per_second():
    now, out = [0.0], []
    p = PlainProgress("s", 1000, every=10, stream=type("W", (), {"write": out.append, "flush": lambda s: None})(),
                      clock=lambda: now[0], per_step=lambda: 15 / 250)   # 15 models, 250 steps an epoch
    now[0] = 20.0
    p.advance(200)            # 200 steps × 15/250 = 12 model-epochs in 20 s
    assert "200/1000 steps (20%), elapsed 0:20, ETA 1:20, 0.60 model-epochs/s" in "".join(out)


def test_data_uploaded_once_per_array_on_an_accelerator():
    from scalelab.engine import _resident

    dev = torch.device("meta")   # not the CPU: the caching path, without a GPU
    X = np.arange(60, dtype=np.uint8).reshape(6, 10)
    a = _resident.upload(X[:4], dev)
    assert _resident.upload(X[:4], dev) is a                     # the same rows again: shared
    assert _resident.upload(X[4:], dev) is not a                 # other rows, other dtype: not
    assert _resident.upload(X[:4], dev, torch.float32, via_float64=True).dtype == torch.float32
    for i in range(_resident.KEEP):                               # older uploads are let go
        _resident.upload(np.full(3, i), dev)
    assert _resident.upload(X[:4], dev) is not a
    cpu = _resident.upload(X, torch.device("cpu"))                # on the CPU: the array's own memory
    assert cpu.data_ptr() == X.__array_interface__["data"][0]
