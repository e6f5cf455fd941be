"""The CLI and the SQLite store end to end: run, show, errors, resume after a kill, divergence."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import requires_real, small_spec
from scalelab import Store, run_study, summarize
from scalelab._cli import main
from scalelab.report._summary import describe

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def to_toml(d: dict) -> str:
    lines, tables = [], []
    for k, v in d.items():
        (tables if isinstance(v, dict) else lines).append((k, v))
    out = [f"{k} = {json.dumps(v)}" for k, v in lines]
    for k, v in tables:
        out.append(f"[{k}]")
        out += [f"{json.dumps(kk) if '.' in kk else kk} = {json.dumps(vv)}" for kk, vv in v.items()]
    text = "\n".join(out) + "\n"
    tomllib.loads(text)
    return text


def write_spec(tmp_path, d) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(to_toml(d))
    return p


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scalelab", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


def test_run_then_show_json_csv_table(tmp_path, fake_fmnist):
    spec = write_spec(tmp_path, small_spec(fake_fmnist, grid={"input.scale": ["1/255", 1]}))
    db = tmp_path / "s.db"
    r = cli("run", spec, "--db", db)
    assert r.returncode == 0, r.stderr
    assert "input.scale" in r.stdout
    r = cli("show", "tiny", "--db", db, "--format", "json")
    recs = json.loads(r.stdout)
    assert [rec["level"] for rec in recs] == [{"input.scale": "1/255"}, {"input.scale": 1}]
    for rec in recs:
        assert rec["n_seeds"] == 2 and rec["n_diverged"] == 0 and len(rec["train_loss_by_epoch"]) == 2
        for m in ("final_train_loss", "test_loss", "test_accuracy"):
            assert set(rec[m]) == {"mean", "std", "ci95"} and rec[m]["ci95"][0] <= rec[m]["mean"] <= rec[m]["ci95"][1]
    # the JSON agrees with the raw per-epoch rows in SQLite (a hand computation)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT t.level, e.train_loss FROM epochs e JOIN trials t ON t.id = e.trial_id "
                       "WHERE e.epoch = 2").fetchall()
    vals = [v for lvl, v in rows if json.loads(lvl) == {"input.scale": "1/255"}]
    assert recs[0]["final_train_loss"]["mean"] == pytest.approx(np.mean(vals), rel=1e-12)
    assert recs[0]["final_train_loss"]["std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-9)
    r = cli("show", "tiny", "--db", db, "--format", "csv")
    assert r.stdout.splitlines()[0].startswith("level,n_seeds,n_diverged,final_train_loss_mean")
    assert len(r.stdout.splitlines()) == 3
    # each trial stores its resolved spec and environment
    spec_json, env_json = con.execute("SELECT spec, env FROM trials LIMIT 1").fetchone()
    assert json.loads(spec_json)["optim"]["eps"] == 1e-7 and "torch" in json.loads(env_json)


def test_ci95_is_the_t_interval():
    d = describe([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2  # t(0.975, 3) by hand
    assert d["ci95"] == pytest.approx([2.5 - half, 2.5 + half])


def test_rerun_skips_finished_trials(tmp_path, fake_fmnist):
    db = tmp_path / "s.db"
    spec = small_spec(fake_fmnist)
    run_study(spec, db)
    store = Store(db)
    before = store.trials(1)
    run_study(spec, db)
    assert [t["id"] for t in store.trials(1)] == [t["id"] for t in before]


def test_resume_after_kill_stores_each_trial_once(tmp_path, fake_fmnist):
    d = small_spec(fake_fmnist, seeds=4, train__epochs=25)
    spec = write_spec(tmp_path, d)
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-m", "scalelab", "run", str(spec), "--db", str(db), "--group-size", "1",
                             "--quiet"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline:
        time.sleep(0.1)
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM trials").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if n >= 1:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= n < 4, "the kill should land after some but not all trials"
    first = sqlite3.connect(db).execute("SELECT key, wall_s FROM trials ORDER BY id").fetchall()
    r = cli("run", spec, "--db", db, "--group-size", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    keys = [k for k, in con.execute("SELECT key FROM trials")]
    assert len(keys) == 4 == len(set(keys))
    assert con.execute("SELECT key, wall_s FROM trials ORDER BY id").fetchall()[: len(first)] == first
    assert con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 4 * 25


def test_diverged_trial_is_stored_and_the_study_goes_on(tmp_path, fake_fmnist, capsys):
    d = small_spec(fake_fmnist, profile="torch", seeds=2, input={"transform": "scale", "scale": 1e6},
                   optim={"name": "sgd", "lr": 1.0}, grid={"optim.lr": [1e-3, 1e12]})
    db = tmp_path / "s.db"
    assert main(["run", str(write_spec(tmp_path, d)), "--db", str(db), "--quiet"]) == 0
    recs = summarize(Store(db), "tiny")
    assert recs[0]["n_diverged"] == 0 and recs[1]["n_diverged"] == 2
    assert recs[1]["test_loss"]["mean"] is None
    steps = [r[0] for r in sqlite3.connect(db).execute("SELECT diverged_step FROM trials WHERE status='diverged'")]
    assert len(steps) == 2 and all(s >= 1 for s in steps)


@pytest.mark.parametrize("args,needle", [
    (["show", "nope"], "no store at"),
    (["explain", "nope"], "no store at"),
    (["equivalence", "--input-scale", "x", "--optimizer", "adam"], "'x' is not a number"),
    (["equivalence", "--input-scale", "2", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["study", "run", "nope"], "no built-in study named 'nope'"),
    (["run", "missing.toml"], "spec file missing.toml does not exist"),
    (["study", "run", "input-scaling", "--set", "optim.lr=-1"], "--set: optim.lr = -1"),
    (["study", "run", "input-scaling", "--set", "optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["study", "run", "input-scaling", "--data-dir", "/nonexistent"], "Fashion-MNIST not found in /nonexistent"),
    (["study", "run", "function-approximation", "--set", 'input.features=["sinh(x0)"]'], "write fn(xN)"),
    (["study", "run", "feature-scales", "--set", 'target.transform="minmax"', "--set", "train.epochs=1"],
     "target.transform applies to regression targets"),
    (["study", "run", "input-scaling", "--probes", "most"], "invalid choice: 'most'"),
    (["study", "run", "input-scaling", "--workers", "0"], "--workers 0: give a number of processes"),
    (["study", "run", "input-scaling", "--workers", "2", "--executor", "ray"], "with --executor ray the cluster"),
])
def test_cli_errors_are_one_line(tmp_path, args, needle):
    r = cli(*args, "--db", tmp_path / "x.db") if args[0] in ("show", "explain") or args[:2] == ["study", "run"] else cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalelab: error:") and needle in lines[0], r.stderr


def test_show_unknown_study_in_existing_store(tmp_path):
    Store(tmp_path / "x.db").close()
    r = cli("show", "nope", "--db", tmp_path / "x.db")
    assert r.returncode == 2 and "no study named 'nope'" in r.stderr and r.stderr.count("\n") == 1


def test_study_list_and_spec():
    r = cli("study", "list")
    assert r.returncode == 0 and "input-scaling" in r.stdout
    r = cli("study", "spec", "input-scaling")
    assert tomllib.loads(r.stdout)["name"] == "input-scaling"


@requires_real
def test_real_fashion_mnist_one_epoch_subset(tmp_path):
    """Integration: the built-in study on real data (subset, 1 epoch): /255 learns, raw pixels stall."""
    db = tmp_path / "s.db"
    r = cli("study", "run", "input-scaling", "--db", db, "--set", "train.epochs=1", "--set", "seeds=2",
            "--set", "data.train_subset=6000", "--set", "data.test_subset=2000", "--quiet")
    assert r.returncode == 0, r.stderr
    recs = {json.dumps(x["level"]): x for x in summarize(Store(db), "input-scaling")}
    good, raw = recs['{"input.scale": "1/255"}'], recs['{"input.scale": 1}']
    assert good["test_accuracy"]["mean"] > 0.7
    assert raw["final_train_loss"]["mean"] > 8 and raw["test_accuracy"]["mean"] < 0.35
