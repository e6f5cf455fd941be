"""Which arithmetic a trial ran (compiled or eager, and on which vector instruction set) is
stored with it; a compile that fails over to eager says so in one line, also under --quiet;
and a study is never continued on the other path.

The compile failure is real: the C++ compiler is /bin/false and the compiler's cache is
empty (a cached graph would need no compiler), so torch.compile fails exactly as it does on
a machine without a working compiler."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

SPEC = """
name = "tiny-compiled"
profile = "keras"
seeds = {seeds}
[data]
dataset = "digits"
validation = 0
[model]
hidden = [16]
[loss]
name = "crossentropy"
[optim]
name = "adam"
lr = 0.001
[train]
batch_size = 32
epochs = 3
compile = true
[probes]
preset = "none"
"""


def _env(tmp_path: Path, broken: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if broken:   # no working C++ compiler, and no cached graph that would not need one
        env.update(CXX="/bin/false", TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "empty-cache"))
    return env


def _cli(tmp_path, broken, *args):
    return subprocess.run([sys.executable, "-m", "scalelab", *args], cwd=tmp_path, env=_env(tmp_path, broken),
                          capture_output=True, text=True, timeout=600)


def _envs(db: Path) -> list[dict]:
    with sqlite3.connect(db) as c:
        return [json.loads(e) for (e,) in c.execute("SELECT env FROM trials ORDER BY id")]


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("scalelab:")]


def test_a_failed_compile_is_said_under_quiet_recorded_and_a_widened_study_refuses_to_mix(tmp_path):
    (tmp_path / "a.toml").write_text(SPEC.format(seeds=2))
    r = _cli(tmp_path, True, "run", "a.toml", "--db", "s.db", "--quiet")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in _errors(r.stderr) if "torch.compile" in ln]
    assert len(lines) == 1 and "running eagerly" in lines[0] and "InvalidCxxCompiler" in lines[0], r.stderr
    envs = _envs(tmp_path / "s.db")
    assert len(envs) == 2
    for e in envs:
        assert e["step"] == "eager" and "InvalidCxxCompiler" in e["compile_error"] and e["cpu_capability"]
    # one more seed with a working compiler: the two stored trials are reused, the new one
    # would run compiled: refused in one line that says how to go on, nothing stored
    (tmp_path / "b.toml").write_text(SPEC.format(seeds=3))
    r = _cli(tmp_path, False, "run", "b.toml", "--db", "s.db", "--quiet")
    assert r.returncode == 2, r.stderr
    err = _errors(r.stderr)
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "eager (torch.compile failed)" in err[0] and "compiled (" in err[0] and "SCALELAB_COMPILE=0" in err[0]
    assert len(_envs(tmp_path / "s.db")) == 2


INTERRUPT_AFTER_EPOCH_1 = textwrap.dedent("""
    import sys
    import scalelab
    from scalelab.engine import Hook

    class Stop(Hook):
        def on_epoch_end(self, view, epoch, metrics):
            if epoch == 2:   # epoch 1's checkpoint is stored; epoch 2's is not
                raise KeyboardInterrupt

    try:
        scalelab.run_study(sys.argv[1], sys.argv[2], hooks=[lambda trials: Stop()])
    except KeyboardInterrupt:
        print("interrupted")
""")


def test_a_resume_from_a_compiled_checkpoint_refuses_the_eager_fallback(tmp_path):
    (tmp_path / "a.toml").write_text(SPEC.format(seeds=1))
    r = subprocess.run([sys.executable, "-c", INTERRUPT_AFTER_EPOCH_1, "a.toml", "s.db"], cwd=tmp_path,
                       env=_env(tmp_path, False), capture_output=True, text=True, timeout=600)
    assert r.stdout.strip() == "interrupted", r.stderr
    with sqlite3.connect(tmp_path / "s.db") as c:
        assert c.execute("SELECT epoch FROM checkpoints").fetchall() == [(1,)]
    r = _cli(tmp_path, True, "run", "a.toml", "--db", "s.db", "--quiet")
    assert r.returncode == 2, r.stderr
    err = [ln for ln in _errors(r.stderr) if "error" in ln]
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "first 1 epoch(s) ran compiled (" in err[0] and "eager (torch.compile failed)" in err[0]
    assert "fix the compiler" in err[0] and "new --db" in err[0]
    with sqlite3.connect(tmp_path / "s.db") as c:   # the checkpoint is kept; nothing half-trained is stored
        assert c.execute("SELECT epoch FROM checkpoints").fetchall() == [(1,)]
        assert c.execute("SELECT count(*) FROM trials").fetchone() == (0,)
    # with the compiler back, the resume runs on the checkpoint's path and finishes
    r = _cli(tmp_path, False, "run", "a.toml", "--db", "s.db", "--quiet")
    assert r.returncode == 0, r.stderr
    (env,) = _envs(tmp_path / "s.db")
    assert env["step"] == "compiled" and env["vec_isa"] and "compile_error" not in env


def test_steps_eager_by_plan_are_recorded_without_an_error(tmp_path, capfd):
    import tomllib

    from scalelab import run_study

    spec = tomllib.loads(SPEC.format(seeds=1).replace("compile = true\n", "compile = false\n"))
    run_study(spec, tmp_path / "s.db")
    assert "torch.compile" not in capfd.readouterr().err
    (env,) = _envs(tmp_path / "s.db")
    assert env["step"] == "eager" and "compile_error" not in env and "vec_isa" not in env
    assert env["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "NO AVX", "ZVECTOR", "VSX", "SVE256")
