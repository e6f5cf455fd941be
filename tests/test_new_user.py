"""What broke or misled when scalelab was tried as a new user would (issue 34): each case
ends in one actionable line (exit 2) or in the right output, never in a traceback or a
silently ignored setting. In-process through ``scalelab._cli.main`` where that is the same
code path, a subprocess where a file system or a process matters."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scalelab import Store
from scalelab._cli import main
from scalelab._spec import SpecError, parse_spec
from scalelab._study import builtin_spec, spec_hash, with_overrides
from scalelab._suggest import did_you_mean

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalelab: error: "), err
    assert not lines[0].startswith("scalelab: error: scalelab"), err   # the program is named once
    return lines[0]


def empty_study_store(db: Path, name: str = "feature-scales") -> Path:
    """A store with the study's row and no trial: what a run leaves while its first group
    trains, or after every trial of its run failed."""
    spec = builtin_spec(name)
    with Store(db) as s:
        s.study_id(spec.name, spec_hash(spec), spec.model_dump())
    return db


@pytest.mark.parametrize("command", [["show"], ["show", "--format", "json"], ["explain"],
                                     ["explain", "--format", "json"], ["report"]])
def test_a_study_without_stored_trials_is_one_line(tmp_path, capsys, command):
    db = empty_study_store(tmp_path / "s.db")
    rc, out, err = run_cli(capsys, command[0], "feature-scales", "--db", db, *command[1:])
    line = one_error_line(err)
    assert rc == 2 and "no stored trial yet" in line and "scalelab study run feature-scales" in line


def test_an_empty_database_file_is_named_not_no_such_table(tmp_path, capsys):
    (tmp_path / "e.db").write_bytes(b"")
    for cmd in (["show", "x"], ["ls"], ["trials", "x"], ["explain", "x"], ["export", "x"]):
        rc, _, err = run_cli(capsys, *cmd, "--db", tmp_path / "e.db")
        line = one_error_line(err)
        assert rc == 2 and "empty file" in line and "no such table" not in line, cmd
    assert (tmp_path / "e.db").read_bytes() == b""


def _read_only_mount(folder: Path, *cmd: str) -> subprocess.CompletedProcess:
    """``cmd`` run with ``folder`` remounted read-only in a mount namespace of its own (a real
    read-only file system; root is not exempt from it, as it is from file modes)."""
    # cd after mounting: a working folder entered before is the writable one under the mount
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && cd "{folder}" && exec "$@"'
    env = {**os.environ, "PYTHONPATH": SRC}
    for unshare in (["unshare", "-m"], ["unshare", "-rm"]):
        r = subprocess.run([*unshare, "sh", "-c", script, "sh", *cmd], capture_output=True, text=True, env=env,
                           cwd=folder, timeout=300)
        if "mount" not in r.stderr and "unshare" not in r.stderr:
            return r
    pytest.skip(f"cannot make a read-only mount here ({r.stderr.strip()[:100]})")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare for a read-only mount")
def test_a_store_in_a_read_only_folder_is_read_and_a_write_is_one_line(tmp_path):
    db = empty_study_store(tmp_path / "s.db")
    with sqlite3.connect(db) as c:   # left in WAL mode, as by a writer that was killed or still runs elsewhere
        c.execute("PRAGMA journal_mode=WAL")
    before = db.read_bytes()
    r = _read_only_mount(tmp_path, sys.executable, "-m", "scalelab", "ls", "--db", "s.db")
    assert r.returncode == 0 and "feature-scales" in r.stdout and "0/60" in r.stdout, r.stderr
    r = _read_only_mount(tmp_path, sys.executable, "-m", "scalelab", "study", "run", "feature-scales", "--db", "s.db")
    line = one_error_line(r.stderr)
    assert r.returncode == 2 and "cannot be written" in line and "--db" in line
    assert db.read_bytes() == before


def test_set_of_a_swept_key_says_which_and_how(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "study", "run", "input-scaling", "--set", "input.scale=1", "--db", tmp_path / "s.db")
    line = one_error_line(err)
    assert rc == 2 and "the grid sweeps input.scale" in line and not (tmp_path / "s.db").exists()
    # the way out it gives works: the grid holds the one value
    fix = line.split("--set '", 1)[1].rstrip("'")
    assert with_overrides(builtin_spec("input-scaling"), [fix]).grid == {"input.scale": [1]}
    rc, _, err = run_cli(capsys, "study", "run", "feature-scales", "--set", "optim.lr=0.1", "--db", tmp_path / "s.db")
    line = one_error_line(err)
    assert rc == 2 and "arm 'sgd' sets optim.lr" in line
    fix = line.split("--set '", 1)[1].rstrip("'")
    assert with_overrides(builtin_spec("feature-scales"), [fix]).arms["sgd"]["optim.lr"] == 0.1


@pytest.mark.parametrize("raw, needle", [
    ({"input": {"transform": "scale", "scale": 0}}, "input.scale = 0: a scale of 0"),
    ({"target": {"scale": 0}}, "target.scale = 0: a scale of 0"),
    ({"grid": {"input.scale": ["1/255", 0]}}, "grid.input.scale value 0: a scale of 0"),
    ({"optim": {"lr": math.nan}}, "optim.lr = nan: is not a number"),
])
def test_bad_values_are_named(raw, needle):
    with pytest.raises(SpecError) as e:
        parse_spec({"name": "x", **raw})
    assert needle in str(e.value)


def test_a_one_row_csv_says_what_to_do(tmp_path, capsys):
    (tmp_path / "one.csv").write_text("a,b,y\n1,2,0\n")
    (tmp_path / "s.toml").write_text(f'name = "csv"\n[data]\ndataset = "file"\npath = "{tmp_path / "one.csv"}"\n'
                                     'target = "y"\n')
    rc, _, err = run_cli(capsys, "run", tmp_path / "s.toml", "--db", tmp_path / "s.db")
    line = one_error_line(err)
    assert rc == 2 and "1 row(s) cannot be split into training and test rows" in line and "add rows" in line


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_trials_json_writes_null_not_nan(tmp_path, capsys):
    """A classification study has no R² (NaN in Python): the JSON says null."""
    from scalelab import run_study

    spec = with_overrides(builtin_spec("feature-scales"), ["seeds=1", "train.epochs=1", "probes.preset='none'",
                                                           "grid={\"input.transform\" = [\"none\"]}"])
    run_study(spec, tmp_path / "s.db")
    for cmd in (["trials", "feature-scales"], ["show", "feature-scales"], ["explain", "feature-scales"]):
        rc, out, _ = run_cli(capsys, *cmd, "--db", tmp_path / "s.db", "--format", "json")
        assert rc == 0 and "NaN" not in out, cmd
        strict_json(out)
    rc, out, _ = run_cli(capsys, "trials", "feature-scales", "--db", tmp_path / "s.db", "--format", "json")
    assert any(v is None for row in strict_json(out) for v in row.values())


def test_usage_errors_name_the_program_once_and_suggest_sensibly(capsys):
    with pytest.raises(SystemExit) as e:
        main(["study", "run", "input-scaling", "--quite"])
    line = one_error_line(capsys.readouterr().err)
    assert e.value.code == 2 and "did you mean '--quiet'" in line and "see scalelab study run --help" in line
    with pytest.raises(SystemExit):
        main(["show", "x", "--quite"])     # show has no --quiet: no suggestion of another command's option
    assert "did you mean" not in one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main(["ls", "--format", "json"])   # an option of other commands: not "did you mean '--format'"
    line = one_error_line(capsys.readouterr().err)
    assert "did you mean '--format'" not in line and "--format is an option of other commands, not of `scalelab ls`" in line
    assert did_you_mean("seeds", ["steps", "epochs"]) == ""          # unrelated at difflib's 0.6
    assert did_you_mean("epoch", ["steps", "epochs"]) == " did you mean 'epochs'?"
    assert did_you_mean("seeds", ["seeds", "steps"]) == ""           # never the word itself
    for args, wanted in ((["--set", "train.seeds=3"], "did you mean 'seeds'?"),
                         (["--set", "epochs=3"], "did you mean 'train.epochs'?")):
        rc = main(["study", "run", "input-scaling", *args, "--db", "/nonexistent/x.db"])
        line = one_error_line(capsys.readouterr().err)
        assert rc == 2 and wanted in line, line


SMALL = ["seeds=1", "train.epochs=1", "probes.preset='none'", 'grid={"input.transform" = ["none", "standardize"]}']


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    from scalelab import run_study

    db = tmp_path_factory.mktemp("small") / "s.db"
    run_study(with_overrides(builtin_spec("feature-scales"), SMALL), db)
    return db


def test_the_table_fits_80_columns_with_its_border_and_whole_numbers(small_store):
    from rich.cells import cell_len
    from rich.console import Console

    from scalelab.report._summary import _table_parts, print_table, summarize

    records = summarize(Store(small_store, readonly=True), "feature-scales")
    for width in (80, 60, 200):
        console = Console(width=width, record=True, file=open(os.devnull, "w"), force_terminal=True)
        print_table(records, "feature-scales", console)
        text = console.export_text()
        lines = text.splitlines()
        assert max(map(cell_len, lines)) <= width, width
        body = [ln for ln in lines if ln[:1] in "┏┃┡│├└"]
        assert body and all(ln.rstrip()[-1] in "┓┃┩│┤┘" for ln in body), (width, text)   # the right border is there
        for cells in _table_parts(records)[1]:   # every number whole, none folded over two lines
            for c in cells[2:5]:
                assert c in text, (width, c, text)


def test_answer_lines_wrap_between_words():
    from scalelab._cli import _wrap

    text = ("- Plain SGD, lr 0.01; raw features, 1e-3 to 4e3 (arm=sgd, input.transform=none): much worse, test "
            "accuracy 0.632 against 0.829 at the best level; the cause: 95% of training samples had an exactly zero")
    out = _wrap(text, 80)
    lines = out.splitlines()
    assert len(lines) > 1 and all(len(ln) <= 80 for ln in lines)
    assert all(ln.startswith("  ") for ln in lines[1:])
    assert out.split() == text.split()   # no word broken


def test_a_resume_is_announced_and_the_eta_counts_only_the_steps_left(tmp_path, capsys):
    from scalelab._progress import PlainProgress

    now = [0.0]
    p = PlainProgress("s", 100, every=1e9, clock=lambda: now[0])
    p.skip(60)                 # 60 steps held by a checkpoint, trained before this run
    now[0] = 10.0
    p.advance(20)              # 20 of the 40 left in 10 s: 10 s to go
    assert "20/40" in p.line() and "ETA 0:10" in p.line()
    db = tmp_path / "s.db"
    assert main(["study", "run", "feature-scales", *[x for s in SMALL[:3] for x in ("--set", s)],
                 "--set", 'grid={"input.transform" = ["none"]}', "--db", str(db), "--quiet"]) == 0
    rc = main(["study", "run", "feature-scales", *[x for s in SMALL for x in ("--set", s)], "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 0 and "feature-scales: resuming: 2 of 4 trials stored" in err, err


def test_the_verdict_says_the_number():
    """By hand: accuracy 0.7 against 0.84 is 1/6 = 17% worse (it used to say "a little worse");
    loss 13.0 against 0.3 is 43.3× the best."""
    from scalelab.report._answers import _verdict

    assert _verdict(0.7, 0.84, True) == "17% worse"
    assert _verdict(0.83, 0.84, True) == "about as good as the best level"
    assert _verdict(0.5, 0.84, True) == "much worse (40% lower)"
    assert _verdict(13.0, 0.3, False) == "much worse (43.3× the best)"


def test_a_consequence_names_the_cause_that_showed_first():
    """Two causes at one level, ranked divergence first but showing at update 1, after the
    zero gradient at step 0: every symptom is a consequence of the zero gradient; one that
    showed at step 0.5 cannot be a consequence of the divergence at all."""
    from scalelab._explain._compare import earlier_cause
    from scalelab._explain._findings import Finding

    divergence = Finding("loss-divergence", {}, {}, "", role="cause", at=1.0)
    zero = Finding("clipped-zero-gradient", {}, {}, "", role="cause", at=0.0)
    note = Finding("curvature", {}, {}, "", role="note", at=0.0)
    assert earlier_cause([divergence, note, zero], 30.0) is zero
    assert earlier_cause([divergence, zero], 0.5) is zero
    assert earlier_cause([divergence], 0.5) is None
    untimed = Finding("ill-conditioning", {}, {}, "", role="cause")
    assert earlier_cause([untimed, divergence], 30.0) is divergence


def test_seeds_that_stopped_learning_are_said_though_a_probe_saw_a_gradient():
    """The planted case of test_explain_zero_gradient, with one seed's last probed batch
    gradient 1e-9 instead of 0: the seed whose loss stayed 14.5 in its last two epochs has
    still stopped learning, and the finding says so (it used to drop the sentence)."""
    from explain_helpers import SPEC, view
    from scalelab._explain._zero_gradient import rule_zero_gradient

    ref = view({"s": "1/255"}, SPEC, {("zero_grad", "share"): {0: [0, 0], 100: [0.01, 0.0]}})
    bad = view({"s": 1}, SPEC, {("zero_grad", "share"): {0: [0.88, 0.9], 100: [1.0, 1.0]},
                                ("logits", "p_true_below_clip"): {0: [0.8, 0.84], 100: [0.9, 0.9]},
                                ("logits", "p_true_above_1-clip"): {0: [0.08, 0.06], 100: [0.1, 0.1]},
                                ("gradients", "total.norm"): {0: [3.0, 2.0], 100: [0.0, 1e-9]}},
               final_loss=-math.log(1e-7) * 0.9, losses=[[14.5, 14.5], [14.4, 14.5]])
    (f,) = rule_zero_gradient(bad, ref)
    assert f.evidence["batch_gradient_exactly_zero_from_step"] is None
    assert "exactly 0.0 at every probed step" not in f.text and "1 of 2 seeds stopped learning" in f.text


def test_a_sharp_curvature_answer_says_why_and_uses_medians_throughout():
    """Plain SGD, lr 0.1 (limit 2/lr = 20): eigenvalues 21 and 31 at step 0 (median 26); the
    best level's 1, 2 and 100 have median 2 and mean 34.3. The answer quotes the finding's
    first clause, which must hold the limit; the reference is a median like the level's."""
    from explain_helpers import SPEC, view
    from scalelab.report._answers import _clause
    from scalelab._explain._curvature import rule_curvature

    spec = {"optim": {"name": "sgd", "lr": 0.1, "lr_mult": [1.0, 1.0]}, **SPEC}
    bad = view({"t": "raw"}, spec, {("hessian", "max_eigenvalue"): {0: [21.0, 31.0], 10: [21.0, 31.0]}})
    ref = view({"t": "std"}, spec, {("hessian", "max_eigenvalue"): {0: [1.0, 2.0, 100.0], 10: [1.0, 2.0, 100.0]}})
    (f,) = rule_curvature(bad, ref)
    assert f.id == "sharp-curvature"
    clause = _clause(f, bad.label)
    assert "stability limit 2/lr = 20" in clause and "26" in clause, clause
    assert f.evidence["reference_max_eigenvalue_first"] == 2.0 and "step 0: 2)" in f.text
