"""`import scalelab` and every `scalelab ... --help` load no heavy module; every public
name still resolves (lazily, to the object its module defines)."""

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import scalelab
from scalelab._cli_parser import _parser

HEAVY = ("torch", "matplotlib", "numpy", "pydantic", "ray")
SRC = str(Path(scalelab.__file__).resolve().parents[1])


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


CHECK = f"""
import sys
heavy = [m for m in {HEAVY!r} if m in sys.modules]
assert not heavy, heavy
"""


def subcommands(parser: argparse.ArgumentParser, path=()) -> list[tuple[str, ...]]:
    """Every command path of the CLI: (), ('run',), ('study',), ('study', 'list'), ..."""
    out = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += subcommands(sub, (*path, name))
    return out


def test_import_scalelab_loads_no_heavy_module():
    r = run_python("import scalelab\n" + CHECK)
    assert r.returncode == 0, r.stderr


def test_help_of_every_subcommand_loads_no_heavy_module():
    paths = subcommands(_parser())
    assert ("study", "run") in paths and ("equivalence",) in paths and len(paths) > 8
    code = f"""
import contextlib, io
from scalelab._cli import main
for path in {paths!r}:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*path, "--help"])
        except SystemExit as e:
            assert e.code == 0, (path, e.code)
    assert "usage: scalelab" in out.getvalue(), path
""" + CHECK
    r = run_python(code)
    assert r.returncode == 0, r.stderr


def test_python_m_scalelab_help_loads_no_heavy_module():
    # checked at interpreter exit, after __main__ has run and argparse has exited
    code = ("import atexit, os, runpy, sys\n"
            f"def check():\n    heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "    if heavy:\n        print(heavy, file=sys.stderr); os._exit(3)\n"
            "atexit.register(check)\nsys.argv = ['scalelab', '--help']\n"
            "runpy.run_module('scalelab', run_name='__main__', alter_sys=True)\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "usage: scalelab" in r.stdout


@pytest.mark.parametrize("name", scalelab.__all__)
def test_every_public_name_resolves(name):
    value = getattr(scalelab, name)
    if name != "__version__":
        module = importlib.import_module(f"scalelab.{scalelab._EXPORTS[name]}")
        assert value is getattr(module, name)
    assert name in dir(scalelab)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scalelab.nope  # noqa: B018
    assert not hasattr(scalelab, "nope")


def test_local_study_does_not_import_ray(tmp_path):
    """Ray is imported only when the Ray executor is asked for."""
    db = tmp_path / "s.db"
    code = f"""
import sys
from scalelab import run_study
run_study(dict(name="t", seeds=1, data=dict(dataset="iris"), loss=dict(name="crossentropy"),
               model=dict(hidden=[4]), train=dict(epochs=1)), {str(db)!r})
assert "ray" not in sys.modules
"""
    r = run_python(code)
    assert r.returncode == 0, r.stderr
