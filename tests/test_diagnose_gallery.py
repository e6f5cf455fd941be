"""A fast subset of the gallery of broken programs (examples/gallery/; the full run is
benchmarks/diagnose_gallery.py, results in benchmarks/results/): each broken program's
first cause is its labelled root cause, and its fixed twin gets no cause. The subset spans
both frameworks, a loss given as a function, a model whose forward takes two inputs, a
check before the first step and one from the loop."""

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import diagnose_gallery as gallery  # noqa: E402

FAST = ["k01", "k08", "k17", "t03", "t05", "t13"]


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_every_program_is_labelled_and_has_a_twin():
    names = gallery.programs()
    assert len(names) >= 30
    assert {n[0] for n in names} == {"k", "t"}
    for n in names:
        text = (gallery.GALLERY / f"{n}.py").read_text()
        assert "ROOT_CAUSE = (" in text and "CATEGORY = " in text and "fixed" in text, n
        assert "# the one added line" in text, n


@pytest.mark.parametrize("prefix", FAST)
def test_root_cause_first_and_fixed_twin_clean(prefix, tmp_path):
    if prefix.startswith("k"):
        keras = pytest.importorskip("keras")
        if keras.backend.backend() != "torch":
            pytest.skip("the Keras programs run on Keras's torch backend")
    name = gallery.programs([prefix])[0]
    broken = gallery.run_one(name, False, str(tmp_path / "b.db"))
    fixed = gallery.run_one(name, True, str(tmp_path / "f.db"))
    b, f = gallery.score(broken, fixed)
    assert b == "root cause first", (b, broken.get("causes"), broken.get("error"), broken.get("output"))
    assert f == "clean", (f, fixed.get("output"))


def test_show_prints_the_users_model(tmp_path):
    """The stored run records the user's own model, loss, optimizer, batch size and epochs
    (t05's: two nn.Linear, nn.CrossEntropyLoss, SGD at lr 0.01, batch 16, 15 epochs), and
    `scalelab show` prints them."""
    import subprocess

    name = gallery.programs(["t05"])[0]
    db = tmp_path / "s.db"
    gallery.run_one(name, True, str(db))
    r = subprocess.run([sys.executable, "-m", "scalelab", "show", "--db", str(db), "t05"], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "0: nn.Linear 32, activation=relu" in out and "2: nn.Linear 3" in out, out
    assert "loss: nn.CrossEntropyLoss()" in out and "optimizer: SGD(learning_rate=0.01)" in out, out
    assert "batch size: 16, epochs: 15" in out, out


@pytest.mark.parametrize("name, metric, helps", [
    ("t12_sigmoid_then_bce_logits", "final train loss", True),   # the user's loss, unchanged: its values compare
    ("t15_mask_labels_255", "train accuracy", True),             # 0/255 labels mapped to 0/1: the targets change
    ("t09_unscaled_pixels", "final train loss", False),          # raw pixels under a logits loss train fine: demoted
])
def test_verified_on_copies_with_the_metric_the_change_allows(tmp_path, monkeypatch, name, metric, helps):
    """SCALELAB_VERIFY=3 on three PyTorch programs: each named root cause's remedy run on
    copies; the verdict read from the store matches the per-seed values stored for each arm."""
    from scalelab import Store
    from scalelab._verify_read import stored_verification

    monkeypatch.setenv("SCALELAB_VERIFY", "3")
    r = gallery.run_one(name, False, str(tmp_path / "g.db"))
    with Store(tmp_path / "g.db", readonly=True) as store:
        recs = {x["finding"]: x["verified"] for x in stored_verification(store, name.split("_")[0])}
    v = recs[r["root"][0]]
    assert v["metric"] == metric and v["seeds"] == 3 and v["helps"] is helps, v
    better = [(a < b) if metric == "final train loss" else (a > b) for b, a in zip(v["before_by_seed"], v["after_by_seed"])]
    assert sum(better) == v["seeds_improved"]
