"""A property of the whole command line: whatever a user types at whatever store — a
store with a study, one whose study has no trial yet, an empty file, a corrupt file, another
program's SQLite file, a read-only file, a folder, no file at all — scalelab answers with its
output (exit 0) or with one line on stderr (exit 2), never a traceback, and a reading command
never changes a byte of the store. In-process (``scalelab._cli.main``), a few dozen examples."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from scalelab import Store, run_study  # noqa: E402
from scalelab._cli import main  # noqa: E402
from scalelab._study import builtin_spec, spec_hash, with_overrides  # noqa: E402

STUDY = "feature-scales"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("stores")
    out = {}
    spec = with_overrides(builtin_spec(STUDY), ["seeds=1", "train.epochs=1", "probes.preset='cheap'",
                                                'grid={"input.transform" = ["none"]}', 'arms={}'])
    out["study"] = tmp / "study.db"
    run_study(spec, out["study"])
    out["no-trials"] = tmp / "no-trials.db"
    with Store(out["no-trials"]) as s:
        s.study_id(STUDY, spec_hash(builtin_spec(STUDY)), builtin_spec(STUDY).model_dump())
    out["empty"] = tmp / "empty.db"
    out["empty"].write_bytes(b"")
    out["corrupt"] = tmp / "corrupt.db"
    out["corrupt"].write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    out["text"] = tmp / "notes.txt"
    out["text"].write_text("not a database\n")
    out["foreign"] = tmp / "foreign.db"
    with sqlite3.connect(out["foreign"]) as c:
        c.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        c.execute("INSERT INTO users(name) VALUES ('ada')")
    out["read-only"] = tmp / "read-only.db"
    out["read-only"].write_bytes(out["study"].read_bytes())
    out["read-only"].chmod(0o444)
    out["folder"] = tmp / "a-folder"
    out["folder"].mkdir()
    out["missing"] = tmp / "missing.db"
    return out


def _digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    files = [path] + [path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files if p.exists())).hexdigest()


COMMANDS = st.sampled_from([
    ["show", "{study}"], ["show", "{study}", "--format", "json"], ["show", "{study}", "--format", "csv"],
    ["explain", "{study}"], ["explain", "{study}", "--format", "json"], ["explain", "{study}", "--trial", "1"],
    ["explain", "{study}", "--trial", "999"], ["trials", "{study}"], ["trials", "{study}", "--format", "json"],
    ["ls"], ["export", "{study}"], ["report", "{study}", "-o", "{out}"],
    ["show"], ["shw", "{study}"], ["show", "{study}", "--format", "yaml"], ["trials", "{study}", "--quite"],
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=COMMANDS, store=st.sampled_from(["study", "no-trials", "empty", "corrupt", "text", "foreign",
                                                "read-only", "folder", "missing"]),
       study=st.sampled_from([STUDY, "no-such-study", "feature-scale", ""]))
def test_any_reading_command_at_any_store_answers_or_errs_in_one_line(stores, tmp_path, command, store, study):
    db = stores[store]
    before = _digest(db)
    args = [a.format(study=study, out=tmp_path / "r.html") for a in command] + ["--db", str(db)]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(args)
        except SystemExit as e:   # argparse's usage errors
            rc = e.code
    err = err.getvalue()
    assert "Traceback" not in err and "Traceback" not in out.getvalue(), (args, err)
    assert rc in (0, 2), (args, rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("scalelab: error: "), (args, err)
        assert not lines[0].startswith("scalelab: error: scalelab:"), lines[0]
    else:
        assert store in ("study", "read-only", "no-trials") or command == ["ls"], (args, out.getvalue())
        if "json" in command:   # strict JSON: a bare NaN or Infinity is refused
            json.loads(out.getvalue(), parse_constant=lambda name: pytest.fail(f"{args}: {name} in JSON"))
    assert _digest(db) == before, f"{args} changed {db.name}"
    if store == "missing":
        assert not db.exists()
    assert not any(p.name.endswith(("-wal", "-shm")) for p in db.parent.iterdir() if os.path.isfile(p)), args
