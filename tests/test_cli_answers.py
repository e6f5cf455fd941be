"""The CLI as a new user meets it: suggestions for typos, progress in a pipe, a quiet exit
on a closed pipe, trial ids to explain, tables that fit 80 columns, the tidy export, and
answer sentences computed from the run."""

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest
from rich.console import Console

from conftest import small_spec, write_fashion_like
from scalelab import Store, run_study
from scalelab._cli import main
from scalelab.report._answers import answers
from scalelab.report._listing import trial_rows, trials_table
from scalelab._progress import PlainProgress
from scalelab.report._summary import render_table, summarize
from scalelab._spec import parse_spec

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
SPEC = dict(probes={"preset": "cheap"}, grid={"input.scale": ["1/255", 1]},
            descriptions={"input.scale=1/255": "pixels to 0–1", "input.scale=1": "raw pixels"})


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "scalelab", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300, **kw)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    fm = write_fashion_like(tmp / "fmnist")
    db = tmp / "s.db"
    run_study(parse_spec(small_spec(fm, **SPEC)), db)
    return tmp, fm, db


@pytest.mark.parametrize("argv, hint", [
    (["shwo", "x"], "did you mean 'show'?"),
    (["study", "run", "input-scaling", "--quite"], "did you mean '--quiet'?"),
    (["study", "run", "input-scalng"], "did you mean 'input-scaling'?"),
    (["study", "run", "input-scaling", "--set", "optim.lrr=1"], "did you mean 'lr'?"),
    (["study", "run", "input-scaling", "--set", "grid={'input.scal' = [1]}"], "did you mean 'input.scale'?"),
])
def test_typos_get_a_suggestion(argv, hint, capsys, tmp_path):
    try:
        rc = main([*argv, "--db", str(tmp_path / "x.db")] if argv[0] == "study" and "--quite" not in argv else argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and hint in err and err.count("\n") == 1, err


def test_stored_study_typo_gets_a_suggestion(study, capsys):
    assert main(["explain", "tinyy", "--db", str(study[2])]) == 2
    assert "did you mean 'tiny'?" in capsys.readouterr().err


def test_piped_progress_prints_periodic_lines(study, tmp_path):
    tmp, fm, _ = study
    spec = tmp_path / "spec.toml"
    spec.write_text(f'name = "tiny"\nseeds = 2\n[data]\ndir = "{fm}"\nverify = false\n'
                    '[input]\ntransform = "scale"\nscale = "1/255"\n[model]\nhidden = [8]\n'
                    '[train]\nbatch_size = 32\nepochs = 2\n')
    r = cli("run", spec, "--db", tmp_path / "p.db", "--progress-every", "0")
    assert r.returncode == 0, r.stderr
    lines = re.findall(r"tiny: (\d+)/(\d+) steps \((\d+)%\), elapsed \d+:\d\d, ETA (\S+)", r.stderr)
    total = 2 * -(-600 // 32)   # epochs × batches of the 600 synthetic training images
    assert len(lines) >= 3 and all(int(t) == total for _, t, _, _ in lines)
    done = [int(d) for d, *_ in lines]
    assert done == sorted(done) and done[-1] == total and lines[-1][2] == "100"


def test_plain_progress_eta_from_the_rate():
    now = [0.0]
    out = []
    p = PlainProgress("s", 1000, every=10, stream=type("W", (), {"write": out.append, "flush": lambda s: None})(),
                      clock=lambda: now[0])
    now[0] = 5.0
    p.advance(100)          # 5 s in: no line yet
    now[0] = 20.0
    p.advance(100)          # 200 of 1000 in 20 s: 80 s left
    text = "".join(out)
    assert text.count("\n") == 1 and "200/1000 steps (20%), elapsed 0:20, ETA 1:20" in text


def test_explain_into_a_closed_pipe_exits_quietly(study):
    db = study[2]
    r = subprocess.run(f"set -o pipefail; {sys.executable} -m scalelab explain tiny --db {db} | head -1",
                       shell=True, capture_output=True, text=True, env=ENV, executable="/bin/bash", timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "Answer:" and r.stderr == ""
    # a reader gone before the first write
    p = subprocess.Popen([sys.executable, "-m", "scalelab", "explain", "tiny", "--db", str(db)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    p.stdout.close()
    assert p.wait(timeout=120) == 0 and b"Traceback" not in p.stderr.read()


def test_trials_lists_the_ids_explain_takes(study, capsys):
    db = study[2]
    ids = [r[0] for r in sqlite3.connect(db).execute("SELECT id FROM trials ORDER BY id")]
    assert main(["trials", "tiny", "--db", str(db), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ids and {r["seed"] for r in rows} == {0, 1}
    assert main(["explain", "tiny", "--db", str(db), "--trial", str(ids[-1])]) == 0
    assert "input.scale=1, seed=1" in capsys.readouterr().out
    assert main(["ls", "--db", str(db)]) == 0
    assert re.search(r"tiny .* 4/4 .* complete", capsys.readouterr().out)


def test_tables_fit_80_columns_without_cropping(study):
    store = Store(study[2])
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(render_table(summarize(store, "tiny")))
    console.print(trials_table(trial_rows(store, "tiny"), "tiny"))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text
    # every trial id is there in full
    assert all(re.search(rf"│\s*{r['id']}\s*│", text) for r in trial_rows(store, "tiny"))


def test_tidy_export_one_row_per_trial_and_epoch(study, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    db = study[2]
    con = sqlite3.connect(db)
    n_rows = con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    df = Store(db).to_dataframe("tiny")
    assert len(df) == n_rows == 4 * 2 and not df.duplicated(["trial_id", "epoch"]).any()
    assert {"input.scale", "seed", "epoch", "train_loss", "test_acc"} <= set(df.columns)
    assert sorted(df["input.scale"].unique()) == pytest.approx([1 / 255, 1.0])
    # each row's loss is the one stored for that trial and epoch
    for tid, ep, loss in con.execute("SELECT trial_id, epoch, train_loss FROM epochs"):
        assert df[(df.trial_id == tid) & (df.epoch == ep)].train_loss.item() == pytest.approx(loss)
    assert main(["export", "tiny", "--db", str(db)]) == 0
    from io import StringIO

    back = pd.read_csv(StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(back[["trial_id", "seed", "epoch", "input.scale", "train_loss"]],
                                  df[["trial_id", "seed", "epoch", "input.scale", "train_loss"]], check_dtype=False)
    pytest.importorskip("pyarrow")
    assert main(["export", "tiny", "--db", str(db), "--format", "parquet", "-o", str(tmp_path / "t.parquet")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)


def test_answer_sentences_come_from_the_run(study):
    db = study[2]
    con = sqlite3.connect(db)
    acc = {}
    for level, a in con.execute("SELECT t.level, e.val_acc FROM trials t JOIN epochs e ON e.trial_id = t.id "
                                "WHERE e.epoch = (SELECT MAX(epoch) FROM epochs WHERE trial_id = t.id)"):
        acc.setdefault(json.loads(level)["input.scale"], []).append(a)
    mean = {k: sum(v) / len(v) for k, v in acc.items()}
    ans, _ = answers(Store(db), "tiny")
    best = max(mean, key=mean.get)   # the reference level: best on validation (issue 33), not lowest train loss
    assert ans[0].best and ans[0].level["input.scale"] == best and ans[0].metric == "validation accuracy"
    for a in ans:
        x = a.level["input.scale"]
        assert a.description and a.text.startswith(a.description[:1].upper() + a.description[1:])
        assert f"{mean[x]:.3g}" in a.text and (a.best or f"against {mean[best]:.3g}" in a.text)
        cause = next((f for f in a.findings if f.role == "cause"), None)
        assert cause is None or a.best or cause.text.split(", ", 2)[1][:30] in a.text
