"""One regression test per defect of issue 15 ("A store you can trust"), named after it:
each bad input is one actionable line and exit status 2, with nothing written."""

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from scalelab import Store, run_study, write_report
from scalelab._cli import main

BASE = 'name = "e"\nseeds = 1\n[data]\ndataset = "iris"\n[train]\nepochs = 1\n'


def one_line_error(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("scalelab: error:") and "\n" not in err, (rc, err)
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "base.toml"
    p.write_text(BASE)
    return p


def test_report_when_every_seed_ends_at_the_same_value(tmp_path):
    """Defect 1: mean − min of equal floats can be negative (mean of 3 × 0.1 > 0.1)."""
    assert np.mean([0.1] * 3) > 0.1   # the float fact behind the crash
    db = tmp_path / "s.db"
    run_study({"name": "flat", "seeds": 3, "data": {"dataset": "iris"}, "train": {"epochs": 1}}, db)
    with sqlite3.connect(db) as c:   # a collapsed level: every seed ends at test accuracy 0.1
        c.execute("UPDATE epochs SET test_acc = 0.1, val_acc = 0.1, train_acc = 0.1")
    out = write_report(Store(db, readonly=True), "flat", tmp_path / "r.html")
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("setting, needles", [
    ('optim.lr="1e309"', ["optim.lr", "too large for a float"]),                         # defect 6
    ("seeds=[9223372036854775808]", ["seeds", "less than 9223372036854775808"]),           # defect 6
    ("optim.lr.x=3", ["'optim.lr' is a value, not a section"]),                            # defect 6
    ("train.device=tpu", ["train.device", "cpu, cuda, cuda:N or auto"]),                   # defect 6
    ("seeds=[]", ["seeds", "empty list trains nothing"]),                                  # defect 7
    ("seeds=[1, 1]", ["seed(s) 1 repeated"]),                                              # defect 7
    ("optim.lr=inf", ["optim.lr", "finite"]),                                              # defect 7
])
def test_bad_setting_is_one_line(tmp_path, capsys, spec_file, setting, needles):
    one_line_error(capsys, ["run", str(spec_file), "--db", str(tmp_path / "s.db"), "--quiet", "--set", setting],
                   *needles)
    assert not (tmp_path / "s.db").exists()


def test_float_overflow_in_a_spec_file(tmp_path, capsys):
    p = tmp_path / "lr.toml"
    p.write_text(BASE + '[optim]\nlr = "1e309"\n')
    one_line_error(capsys, ["run", str(p), "--db", str(tmp_path / "s.db")], str(p), "too large for a float")


def test_unknown_device_option(tmp_path, capsys, spec_file):
    one_line_error(capsys, ["run", str(spec_file), "--db", str(tmp_path / "s.db"), "--quiet", "--device", "tpu"],
                   "'tpu' is not a device")


def test_spec_path_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "d.toml").mkdir()
    one_line_error(capsys, ["run", str(tmp_path / "d.toml"), "--db", str(tmp_path / "s.db")], "is a folder")


def test_report_output_that_is_a_directory_writes_nothing(tmp_path, capsys):
    db = tmp_path / "s.db"
    run_study({"name": "r", "seeds": 1, "data": {"dataset": "iris"}, "train": {"epochs": 1}}, db)
    (tmp_path / "out").mkdir()
    one_line_error(capsys, ["report", "r", "--db", str(db), "-o", str(tmp_path / "out")], "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.db"] and not any((tmp_path / "out").iterdir())


def test_feature_range_from_toml_and_set(tmp_path, capsys):
    p = tmp_path / "fr.toml"
    p.write_text(BASE.replace("[train]", '[input]\ntransform = "minmax"\nfeature_range = [-1, 1]\n[train]'))
    assert main(["run", str(p), "--db", str(tmp_path / "s.db"), "--quiet", "--set", "input.feature_range=[0, 2]"]) == 0
    s = Store(tmp_path / "s.db", readonly=True)
    (t,) = s.trials(s.require_study("e")["id"])
    assert t["spec"]["input"]["feature_range"] == [0.0, 2.0]


def npz_spec(tmp_path, **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    p = tmp_path / "npz.toml"
    p.write_text(f'name = "n"\nseeds = 1\n[data]\ndataset = "file"\npath = "{tmp_path / "d.npz"}"\n'
                 f'[train]\nepochs = 1\n')
    return p


rng = np.random.default_rng(0)
X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)


@pytest.mark.parametrize("arrays, needles", [
    (dict(X=X, y=y, X_test=X[:5]), ["has X_test but no y_test"]),
    (dict(X=np.float64(1.0), y=y), ["array X is a scalar"]),
    (dict(X=X, y=y, X_test=X[:5, :2], y_test=y[:5]), ["X_test has 2 columns but X has 3"]),
    (dict(X=X, y=np.where(np.arange(40) == 0, 1e10, y)), ["class label 10000000000", "number the classes 0..K-1"]),
])
def test_bad_npz_is_one_line_before_training(tmp_path, capsys, arrays, needles):
    one_line_error(capsys, ["run", str(npz_spec(tmp_path, **arrays)), "--db", str(tmp_path / "s.db"), "--quiet"],
                   *needles)


def csv_spec(tmp_path, data: bytes):
    (tmp_path / "d.csv").write_bytes(data)
    p = tmp_path / "csv.toml"
    p.write_text(f'name = "c"\nseeds = 1\n[data]\ndataset = "file"\npath = "{tmp_path / "d.csv"}"\n'
                 f'target = "label"\n[train]\nepochs = 1\n')
    return p


def test_csv_with_a_bom_reads_its_first_column(tmp_path):
    rows = "".join(f"{i % 3},{i * 0.1:.1f},{i % 2}\n" for i in range(30))
    p = csv_spec(tmp_path, "\ufefflabel,x,z\n".encode("utf-8") + rows.encode())
    assert main(["run", str(p), "--db", str(tmp_path / "s.db"), "--quiet"]) == 0


def test_csv_in_latin1_says_so(tmp_path, capsys):
    p = csv_spec(tmp_path, "label,caf\xe9\n1,2\n0,3\n".encode("latin-1"))
    one_line_error(capsys, ["run", str(p), "--db", str(tmp_path / "s.db"), "--quiet"], "not UTF-8", "save the file")


def test_big_grid_is_counted_first_and_needs_yes(tmp_path, capsys):
    """Defect 7: a 10^6-trial grid expanded silently into memory before anything was printed."""
    p = tmp_path / "big.toml"
    p.write_text(BASE.replace("seeds = 1", "seeds = 100") + "[grid]\n" +
                 f'"optim.lr" = {[10 ** -(i / 100) for i in range(100)]}\n"input.scale" = {list(range(1, 101))}\n')
    one_line_error(capsys, ["run", str(p), "--db", str(tmp_path / "s.db")], "1,000,000 trials", "--yes")
    assert not (tmp_path / "s.db").exists()


def test_sqlite_errors_name_the_file(tmp_path, capsys):
    db = tmp_path / "bad.db"
    db.write_bytes(b"this is not a database at all" * 100)
    one_line_error(capsys, ["show", "x", "--db", str(db)], str(db))


def test_closed_pipe_exits_quietly(tmp_path):
    r = subprocess.run(f"{sys.executable} -m scalelab study spec input-scaling | head -c 10", shell=True,
                       capture_output=True, text=True, env={**os.environ})
    assert r.stdout and r.stderr == ""
