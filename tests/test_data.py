"""Data loading: IDX structure checks, official checksums, other sources, the fetch command."""

import gzip
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from conftest import real_fmnist_available, requires_real, write_fashion_like
from scalelab.data import DataError
from scalelab.data._fashion_mnist import (DEBIAN_DIR, fetch_fashion_mnist, load_fashion_mnist, locate_fashion_mnist,
                                          parse_idx, write_idx)
from scalelab.data._file import load_user
from scalelab.data._sklearn import load_sklearn


def test_idx_round_trip_plain_and_gz(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, arr)
        raw = (gzip.open if name.endswith(".gz") else open)(tmp_path / name, "rb").read()
        # header by hand: magic 0x00000803 then three big-endian dims
        assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:8] == (2).to_bytes(4, "big")
        np.testing.assert_array_equal(parse_idx(raw), arr)


def test_synthetic_fashion_loads_as_uint8(fake_fmnist):
    ds = load_fashion_mnist(fake_fmnist, verify=False)
    assert ds.X_train.dtype == np.uint8 and ds.X_train.shape == (600, 784)
    assert ds.y_train.dtype == np.int64 and ds.X_test.shape == (200, 784)


def test_unofficial_files_fail_the_checksum_naming_the_file(fake_fmnist):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: sha256 .* not the official"):
        load_fashion_mnist(fake_fmnist, verify=True)


def test_truncated_file_is_an_error_naming_it(tmp_path):
    folder = write_fashion_like(tmp_path / "d", gz=False)
    p = folder / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: truncated"):
        load_fashion_mnist(folder, verify=False)


def test_truncated_gzip_is_an_error_naming_it(tmp_path):
    folder = write_fashion_like(tmp_path / "d")
    p = folder / "train-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: .*truncated or corrupted"):
        load_fashion_mnist(folder, verify=False)


def test_corrupted_gzip_is_an_error(tmp_path):
    folder = write_fashion_like(tmp_path / "d")
    p = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 50] = b"\xff" * 50
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_fashion_mnist(folder, verify=False)


def test_wrong_magic(tmp_path):
    folder = write_fashion_like(tmp_path / "d", gz=False)
    p = folder / "train-labels-idx1-ubyte"
    raw = bytearray(p.read_bytes())
    raw[2] = 0x0D  # float32 element type: not a byte IDX file
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="wrong magic number"):
        load_fashion_mnist(folder, verify=False)


def test_label_count_mismatch(tmp_path):
    folder = write_fashion_like(tmp_path / "d")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="200 images but 5 labels"):
        load_fashion_mnist(folder, verify=False)


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*scalelab data fetch"):
        locate_fashion_mnist(tmp_path / "nowhere")


def test_env_var_is_searched_first(tmp_path, monkeypatch):
    folder = write_fashion_like(tmp_path / "env")
    monkeypatch.setenv("SCALELAB_DATA", str(folder))
    assert locate_fashion_mnist() == folder


@requires_real
def test_real_fashion_mnist_checksums_and_shapes():
    ds = load_fashion_mnist(DEBIAN_DIR, verify=True)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X_train.dtype == np.uint8 and ds.X_train.max() == 255
    assert np.bincount(ds.y_train).tolist() == [6000] * 10


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def loopback_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.mark.skipif(not real_fmnist_available(), reason="needs the Debian dataset-fashion-mnist files to serve")
def test_fetch_from_loopback_server_verifies(loopback_server, tmp_path):
    root, url = loopback_server
    for f in Path(DEBIAN_DIR).glob("*.gz"):
        shutil.copy(f, root / f.name)
    dest = fetch_fashion_mnist(tmp_path / "dl", base_url=url)
    ds = load_fashion_mnist(dest, verify=True)
    assert len(ds.X_train) == 60000


def test_fetch_rejects_a_corrupted_download_and_saves_nothing(loopback_server, tmp_path):
    root, url = loopback_server
    write_fashion_like(root)  # right names, wrong bytes
    with pytest.raises(DataError, match="not the official.*nothing was saved"):
        fetch_fashion_mnist(tmp_path / "dl", base_url=url)
    assert list((tmp_path / "dl").iterdir()) == []


def test_fetch_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="download of .* failed"):
        fetch_fashion_mnist(tmp_path / "dl", base_url="http://127.0.0.1:9/", timeout=2)


@pytest.mark.parametrize("name,n_features,task", [("digits", 64, "classification"),
                                                  ("breast_cancer", 30, "classification"),
                                                  ("wine", 13, "classification"), ("diabetes", 10, "regression")])
def test_sklearn_sets(name, n_features, task):
    ds = load_sklearn(name)
    assert ds.n_features == n_features and ds.task == task
    assert len(ds.X_train) + len(ds.X_test) == {"digits": 1797, "breast_cancer": 569, "wine": 178,
                                                "diabetes": 442}[name]


def test_user_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_user(tmp_path / "d.npz")
    assert ds.task == "classification" and ds.n_classes == 3 and len(ds.X_train) == 40
    csv = "a,b,price\n" + "\n".join(f"{i},{i * 2},{i * 0.5 + 0.25}" for i in range(20))
    (tmp_path / "d.csv").write_text(csv)
    ds = load_user(tmp_path / "d.csv", target="price")
    assert ds.task == "regression" and ds.X_train.shape[1] == 2
    np.testing.assert_allclose(np.sort(np.r_[ds.y_train[:, 0], ds.y_test[:, 0]]), np.arange(20) * 0.5 + 0.25)


def test_user_data_with_nan_is_rejected(tmp_path):
    X = np.ones((10, 2))
    X[3, 1] = np.nan
    np.savez(tmp_path / "d.npz", X=X, y=np.zeros(10))
    with pytest.raises(DataError, match=r"X has a NaN or inf value \(first at index \(3, 1\)\)"):
        load_user(tmp_path / "d.npz")


def test_user_csv_missing_target_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no column named 'y'; columns are a, b"):
        load_user(tmp_path / "d.csv", target="y")


def test_a_registered_data_set_is_one_module_and_one_line_moons():
    """moons was added as data/_moons.py plus one register() line: the spec accepts it, its
    arrays are scikit-learn's make_moons for the seeds it names, and a study trains on it."""
    from sklearn.datasets import make_moons

    from scalelab.data import DATASETS, load_dataset
    from scalelab._spec import DATASETS as SPEC_DATASETS, StudySpec

    assert "moons" in DATASETS and "moons" in SPEC_DATASETS
    spec = StudySpec.model_validate(dict(name="m", data=dict(dataset="moons", n_samples=300, noise=0.2, split_seed=3)))
    ds = load_dataset(spec.data)
    X, y = make_moons(300, noise=0.2, random_state=6)
    np.testing.assert_array_equal(ds.X_train, X.astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, y)
    assert ds.X_test.shape == (60, 2) and ds.n_classes == 2


def test_moons_needs_a_nonlinearity(tmp_path):
    """The data set's stated property, through the engine: one hidden ReLU layer separates the
    moons where the same net with a linear activation (a linear model) cannot."""
    from scalelab import Store, run_study

    db = tmp_path / "m.db"
    spec = dict(name="moons", seeds=2, data=dict(dataset="moons", n_samples=600, noise=0.1, validation=0),
                loss=dict(name="crossentropy"), model=dict(hidden=[32]), optim=dict(name="adam", lr=0.02),
                train=dict(epochs=60, batch_size=64), grid={"model.activation": ["relu", "linear"]})
    run_study(spec, db)
    acc = {}
    for t in Store(db).trials(Store(db).require_study("moons")["id"]):
        acc.setdefault(t["level"]["model.activation"], []).append(Store(db).epochs(t["id"])[-1]["test_acc"])
    assert min(acc["relu"]) > 0.97 and max(acc["linear"]) < 0.92, acc
