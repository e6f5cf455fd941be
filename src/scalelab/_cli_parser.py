"""The ``scalelab`` argument parser: every command, option and example, and usage errors as
the same one line as every other error. Standard library only: ``--help`` must stay fast."""

from __future__ import annotations

import argparse
import re
import sys

from ._cli_help import EXAMPLES
from ._suggest import did_you_mean

CONFIRM_ABOVE = 10_000   # trials; a bigger grid needs --yes


class _Parser(argparse.ArgumentParser):
    """argparse with examples under every --help, and a usage error as the same one line as
    every other error, with a suggestion for a mistyped command or option."""

    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*a, **kw)

    def _options(self) -> set[str]:
        out = set()
        for action in self._actions:
            out |= set(action.option_strings)
            for sub in (action.choices or {}).values() if isinstance(action, argparse._SubParsersAction) else ():
                out |= sub._options()
        return out

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)   # for the error's suggestion
        return super().parse_known_args(args, namespace)

    def _command(self) -> "_Parser":
        """The (sub)command the arguments name: ``scalelab study run …`` → its parser."""
        p = self
        for tok in getattr(self, "_argv", []):
            sub = next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)
            if sub is not None and tok in sub.choices:
                p = sub.choices[tok]
        return p

    def error(self, message):
        hint, prog = "", self.prog
        if m := re.search(r"unrecognized arguments: (\S+)", message):
            word = m.group(1).split("=")[0]
            command = self._command()
            prog = command.prog
            own = {o for a in command._actions for o in a.option_strings}
            hint = did_you_mean(word, own)   # the command's own options, not another command's
            if not hint and word in self._options():
                hint = f" {word} is an option of other commands, not of `{command.prog}`;"
        elif m := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
            hint = did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        command = self.prog.removeprefix("scalelab").strip()   # the program's name is said once
        print(f"scalelab: error: {command + ': ' if command else ''}{message};{hint} see {prog} --help",
              file=sys.stderr)
        sys.exit(2)


def _sub(sub, name: str, help: str, key: str | None = None):
    """A subcommand with its examples under --help."""
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                          epilog=EXAMPLES[key or name])


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scalelab", description="Controlled, multi-seed experiments on how scale "
                                "changes neural-network training.", epilog=EXAMPLES["scalelab"])
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def run_opts(sp):
        sp.add_argument("--db", default="scalelab.db", help="SQLite store (default ./scalelab.db)")
        sp.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (or set SCALELAB_DATA)")
        sp.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the spec's train.device)")
        sp.add_argument("--group-size", type=int, help="models per stacked group (default: chosen for the device)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key, e.g. --set train.epochs=1 (repeatable)")
        sp.add_argument("--probes", choices=("none", "cheap", "standard", "full"),
                        help="probe preset to record (default: the spec's probes.preset)")
        sp.add_argument("--quiet", action="store_true", help="no progress, no table")
        sp.add_argument("--yes", action="store_true",
                        help=f"run a grid of more than {CONFIRM_ABOVE:,} trials without asking")
        sp.add_argument("--keep-checkpoints", action="store_true",
                        help="keep each group's last per-epoch checkpoint in the store after it finishes")
        sp.add_argument("--keep", choices=("none", "final", "best"),
                        help="store each trial's trained parameters: after the last epoch (final) or at its best "
                             "validation epoch (best), for scalelab predict / scalelab.load (default: train.keep)")
        sp.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="when stderr is not a terminal, a progress line every SECONDS (default 30)")
        sp.add_argument("--workers", default="auto", metavar="N",
                        help="processes training work units side by side on this machine's CPU: a number, or auto "
                             "(default: one per core, at most 8; 1 on a GPU or with --executor ray); the numbers "
                             "are the same with any N")
        sp.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="where groups run: this process (default) or Ray (pip install 'scalelab[ray]')")
        sp.add_argument("--address", help="with --executor ray: the cluster to join (HOST:6379 or auto; "
                                          "default: start a local Ray instance)")
        sp.add_argument("--max-retries", type=int, help="with --executor ray: retries of a group whose worker "
                                                        "or node died (default 3)")
        sp.add_argument("--cpus-per-group", type=float, help="with --executor ray: CPUs each group asks for "
                                                              "(default 1)")

    stored = "a study stored in --db (scalelab ls lists them)"
    r = _sub(sub, "run", "run a study from a TOML spec file")
    r.add_argument("spec", help="the study's TOML file (scalelab study spec NAME prints a built-in one)")
    run_opts(r)

    st = _sub(sub, "study", "built-in studies: list, run, print their spec")
    stsub = st.add_subparsers(dest="study_cmd", required=True, metavar="ACTION")
    _sub(stsub, "list", "list the built-in studies", "study list")
    sr = _sub(stsub, "run", "run a built-in study", "study run")
    sr.add_argument("name", help="a built-in study (scalelab study list)")
    run_opts(sr)
    ss = _sub(stsub, "spec", "print a built-in study's TOML spec", "study spec")
    ss.add_argument("name", help="a built-in study (scalelab study list)")

    def db_opt(sp):
        sp.add_argument("--db", default="scalelab.db", help="SQLite store (default ./scalelab.db)")

    sh = _sub(sub, "show", "results of a stored study: the table, then the answers and findings")
    sh.add_argument("study", help=stored)
    db_opt(sh)
    sh.add_argument("--format", choices=("table", "json", "csv"), default="table",
                    help="table (default), json or csv: one record per level")

    rp = _sub(sub, "report", "write a self-contained HTML report of a stored study")
    rp.add_argument("study", help=stored)
    db_opt(rp)
    rp.add_argument("-o", "--output", help="HTML file to write (default reports/STUDY.html)")
    rp.add_argument("--png", metavar="DIR", help="also write every figure's panels as PNG and SVG into DIR")
    rp.add_argument("--band", choices=("std", "ci", "minmax", "none"), default="std",
                    help="band around each mean curve: ±std (default), 95%% CI, min–max over seeds, none")

    ex = _sub(sub, "explain", "the answer per level, then the findings (mechanisms, with numbers)")
    ex.add_argument("study", help=stored)
    db_opt(ex)
    ex.add_argument("--trial", type=int, metavar="ID", help="one trial instead of every level "
                    "(scalelab trials STUDY lists the ids)")
    ex.add_argument("--format", choices=("text", "json"), default="text")
    ex.add_argument("--verify", action="store_true", help="each cause's remedy measured next to it across seeds "
                    "(trains the verification once, as scalelab verify does; then reads it)")

    vf = _sub(sub, "verify", "run each cause's remedy next to the original across seeds; say which helped")
    vf.add_argument("study", help=stored)
    run_opts(vf)
    vf.add_argument("--seeds", type=int, help="seeds per arm (default: the study's)")
    vf.add_argument("--format", choices=("text", "json"), default="text")

    ls = _sub(sub, "ls", "the studies in a store: trials stored of the spec's total, status, last update")
    db_opt(ls)
    tr = _sub(sub, "trials", "the trials of a stored study: id, level, seed, status, final metrics")
    tr.add_argument("study", help=stored)
    db_opt(tr)
    tr.add_argument("--format", choices=("table", "csv", "json"), default="table")
    xp = _sub(sub, "export", "a stored study in tidy form: one row per trial × epoch, a column per factor")
    xp.add_argument("study", help=stored)
    db_opt(xp)
    xp.add_argument("--format", choices=("csv", "parquet"), default="csv", help="csv (default) or parquet "
                    "(needs pandas and pyarrow: pip install 'scalelab[export]')")
    xp.add_argument("-o", "--output", help="file to write (default: csv to stdout; parquet needs a file)")

    pr = _sub(sub, "predict", "predictions of a kept trained model (a study run with --keep final or best)")
    pr.add_argument("study", help=stored)
    pr.add_argument("--trial", required=True, metavar="ID", help="the trial's id (scalelab trials STUDY lists them)")
    pr.add_argument("--input", required=True, metavar="FILE.npz", help="raw inputs as array X (or the file's only "
                    "array), in the units of the training data")
    pr.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="file to write: prediction (and label "
                    "for classification, samples with --samples)")
    pr.add_argument("--samples", type=int, metavar="K", help="also K sampled futures per input (generative "
                    "trajectory models)")
    db_opt(pr)
    pr.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (or set SCALELAB_DATA)")

    eq = _sub(sub, "equivalence", "prove the exact reparametrization that makes an input scale a no-op")
    eq.add_argument("--input-scale", required=True, type=_number, metavar="C",
                    help="multiply the inputs by C (e.g. 255, 256 or 1/255)")
    eq.add_argument("--optimizer", required=True, choices=("sgd", "momentum", "adam", "adamw"))
    eq.add_argument("--lr", type=_number, help="learning rate (default: sgd 0.1, momentum 0.01, adam 1e-3)")
    eq.add_argument("--l2", type=_number, default=0.0, help="L2 penalty on kernels, in the loss")
    eq.add_argument("--weight-decay", type=_number, default=0.0, help="decoupled weight decay")
    eq.add_argument("--eps-mode", choices=("keras", "torch"), default="keras", help="where Adam's eps enters")
    eq.add_argument("--steps", type=int, default=300)
    eq.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    eq.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist or a scikit-learn set (digits, ...)")
    eq.add_argument("--base-scale", type=_number, default=1 / 255, help="model A's input factor (default 1/255)")
    eq.add_argument("--hidden", default="128", help="hidden widths, comma-separated (default 128)")
    eq.add_argument("--seed", type=int, default=0)
    eq.add_argument("--data-dir")
    eq.add_argument("--format", choices=("text", "json"), default="text")

    d = _sub(sub, "data", "data sets: fetch, check")
    dsub = d.add_subparsers(dest="data_cmd", required=True, metavar="ACTION")
    f = _sub(dsub, "fetch", "download a data set from its official location", "data fetch")
    f.add_argument("dataset", choices=("fashion-mnist",), help="the data set (fashion-mnist)")
    f.add_argument("--dest", help="folder to write to (default ~/.scalelab/data/fashion-mnist)")
    f.add_argument("--url", help="base URL (default: the official location)")
    c = _sub(dsub, "check", "find and verify a data set", "data check")
    c.add_argument("dataset", choices=("fashion-mnist",), help="the data set (fashion-mnist)")
    c.add_argument("--data-dir")
    return p


def _number(text: str) -> float:
    """A CLI number: 255, 1e-3 or a fraction such as 1/255."""
    from fractions import Fraction

    try:
        return float(Fraction(text.replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (write e.g. 255, 1e-3 or 1/255)") from None
