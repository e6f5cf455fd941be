"""The ``scalelab`` command line. Every user error is one line on stderr and exit status 2.

Only the standard library is imported at module level: ``scalelab --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys

from ._cli_help import EXAMPLES
from ._suggest import did_you_mean

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

    def error(self, message):
        hint = ""
        if m := re.search(r"unrecognized arguments: (\S+)", message):
            hint = did_you_mean(m.group(1).split("=")[0], self._options())
        elif m := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
            hint = did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        print(f"scalelab: error: {self.prog}: {message};{hint} see {self.prog} --help", file=sys.stderr)
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
        sp.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="when stderr is not a terminal, a progress line every SECONDS (default 30)")
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


def _equivalence(args) -> int:
    from ._equivalence_check import check_equivalence
    from .optim import family_of

    if args.steps < 1:
        raise ValueError(f"--steps {args.steps}: must be at least 1")
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        raise ValueError(f"--hidden {args.hidden!r}: give widths such as 128 or 300,100") from None
    dataset = args.dataset.replace("-", "_") if args.dataset != "fashion-mnist" else args.dataset
    r = check_equivalence(args.input_scale, args.optimizer, args.steps, data_dir=args.data_dir,
                          base_scale=args.base_scale, lr=args.lr, l2=args.l2, weight_decay=args.weight_decay,
                          eps_mode=args.eps_mode, dtype=args.dtype, hidden=hidden, dataset=dataset, seed=args.seed)
    if args.format == "json":
        print(json.dumps(r, indent=2))
        return 0
    p = r["parametrization"]
    c = r["c"]
    print(f"Inputs × {c:g} under {r['optimizer']} ({r['eps_mode']} eps) train exactly like the original inputs when "
          f"the first layer changes as follows (biases and other layers unchanged):")
    print(f"  init of W1 × {p['init_scale']:.6g}   lr × {p['lr_mult']:.6g}   eps × {p['eps_mult']:.6g}   "
          f"L2 × {p['l2_mult']:.6g}   weight decay × {p['wd_mult']:.6g}")
    print(f"Checked over {r['steps']} steps in {r['dtype']} on the same batches "
          f"(lr {r['lr']:g}, L2 {r['l2']:g}, weight decay {r['weight_decay']:g}):")
    rows = [("exact (the rules above)", r["exact"]), ("naive (inputs × c only)", r["naive"]),
            ("lr × 1/c only" + ("" if family_of(r["optimizer"]).name == "adam" else " (not 1/c²)"), r["lr_only"])]
    if r["float32_rounding"]:
        rows.append(("yardstick: A float32 vs float64", r["float32_rounding"]))
    print(f"  {'version':34s} {'max |loss_A - loss_B|':>22s} {'max |c·W1_B - W1_A|':>22s}")
    for name, v in rows:
        print(f"  {name:34s} {v['max_loss_diff']:22.3g} {v['max_w1_diff']:22.3g}")
    return 0


def _open_store(path):
    """An existing store (reading commands never create an empty one by accident)."""
    from pathlib import Path

    from ._store import Store

    if not Path(path).exists():
        raise FileNotFoundError(f"no store at {path}; run a study first (scalelab study run NAME --db {path}) "
                                f"or pass --db")
    return Store(path)


def _run(spec, args) -> int:
    from ._executors import make_executor
    from ._store import Store
    from ._study import run_study, with_overrides

    if args.set:
        spec = with_overrides(spec, args.set)
    if args.group_size is not None and args.group_size < 1:
        raise ValueError(f"--group-size {args.group_size}: must be at least 1")
    options = {k: v for k, v in (("max_retries", args.max_retries), ("cpus_per_group", args.cpus_per_group))
               if v is not None}
    executor = make_executor(args.executor, args.data_dir, args.device, args.address, **options)
    store = Store(args.db)
    sid = run_study(spec, store, data_dir=args.data_dir, device=args.device, progress=not args.quiet,
                    group_size=args.group_size, probes=args.probes, executor=executor,
                    progress_every=args.progress_every)
    if not args.quiet:
        _print_results(store, spec.name, f"{spec.name} ({args.db})")
    return 1 if _report_failed(store, sid) else 0


def _report_failed(store, sid: int) -> bool:
    """One line on stderr when trials of the study failed (they have no outcome; a rerun retries them)."""
    failed = store.failed(sid)
    if failed:
        f = failed[0]
        print(f"scalelab: {len(failed)} trial(s) failed, e.g. seed {f['seed']} at {f['level']}: {f['reason']}; "
              f"rerun the same command to try them again", file=sys.stderr)
    return bool(failed)


def _print_results(store, study: str, title: str) -> None:
    """The summary table, then the answer per level and the findings."""
    from ._report import print_table, summarize

    print_table(summarize(store, study), title=title)
    print()
    _print_explain(store, study, None)


def _print_explain(store, study: str, trial) -> None:
    from ._explain import answers, render_text

    ans, findings = answers(store, study, trial)
    print("Answer:")
    for a in ans:
        print(f"- {a.text}")
    if findings:
        print(f"\nFindings (scalelab explain {study}):")
    print(render_text(findings), end="")


def _listing(args) -> int:
    from ._listing import studies_table, study_rows, trial_rows, trials_table
    from ._report import print_rich

    store = _open_store(args.db)
    if args.cmd == "ls":
        rows = study_rows(store)
        if not rows:
            print(f"no studies in {args.db}; run one: scalelab study run NAME --db {args.db}")
            return 0
        print_rich(studies_table(rows, args.db))
        return 0
    rows = trial_rows(store, args.study)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        print_rich(trials_table(rows, f"{args.study} ({args.db})"))
    return 0


def _export(args) -> int:
    from ._export import tidy_csv

    store = _open_store(args.db)
    if args.format == "csv":
        text = tidy_csv(store, args.study)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0
    if not args.output:
        raise ValueError("--format parquet writes a file: add -o FILE.parquet")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError("parquet needs pyarrow: pip install 'scalelab[export]' (or use --format csv)") from None
    store.to_dataframe(args.study).to_parquet(args.output, index=False)
    print(f"{args.output} written", file=sys.stderr)
    return 0


def _main(args) -> int:
    if args.cmd == "run":
        from ._spec import StudySpec

        return _run(StudySpec.from_toml(args.spec), args)
    if args.cmd == "study":
        from ._study import builtin_spec, builtin_studies

        if args.study_cmd == "list":
            for name, path in sorted(builtin_studies().items()):
                spec = builtin_spec(name)
                print(f"{name:28s} {spec.question}")
            return 0
        if args.study_cmd == "spec":
            builtin_spec(args.name)
            print(builtin_studies()[args.name].read_text(), end="")
            return 0
        return _run(builtin_spec(args.name), args)
    if args.cmd == "show":
        from ._report import summarize, to_csv

        store = _open_store(args.db)
        records = summarize(store, args.study)
        if args.format == "json":
            print(json.dumps(records, indent=2))
        elif args.format == "csv":
            print(to_csv(records), end="")
        else:
            _print_results(store, args.study, args.study)
        _report_failed(store, store.require_study(args.study)["id"])
        return 0
    if args.cmd == "equivalence":
        return _equivalence(args)
    if args.cmd == "report":
        from ._html import write_report

        out = write_report(_open_store(args.db), args.study, args.output or f"reports/{args.study}.html", args.png,
                           args.band)
        print(f"report written to {out.resolve()} ({out.stat().st_size / 1e6:.2f} MB)")
        return 0
    if args.cmd == "explain":
        from ._explain import explain

        if args.format == "json":
            findings = explain(_open_store(args.db), args.study, args.trial)
            print(json.dumps([f.as_dict() for f in findings], indent=2, default=str))
        else:
            _print_explain(_open_store(args.db), args.study, args.trial)
        return 0
    if args.cmd in ("ls", "trials"):
        return _listing(args)
    if args.cmd == "export":
        return _export(args)
    if args.cmd == "data":
        from ._data import FASHION_URL, fetch_fashion_mnist, load_fashion_mnist

        if args.data_cmd == "fetch":
            dest = fetch_fashion_mnist(args.dest, args.url or FASHION_URL)
            print(f"Fashion-MNIST verified in {dest}")
            return 0
        ds = load_fashion_mnist(args.data_dir)
        print(f"Fashion-MNIST OK in {ds.meta['dir']}: {len(ds.X_train)} train, {len(ds.X_test)} test, sha256 verified")
        return 0
    return 2


def main(argv=None) -> int:
    # Parsing and --help import nothing heavy (checked by tests/test_lazy_import.py); each
    # command imports its modules (numpy, pydantic, torch, matplotlib) when it runs.
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from ._data import DataError
    from ._spec import SpecError

    try:
        rc = _main(args)
        sys.stdout.flush()   # a closed pipe shows here, inside the try
        return rc
    except BrokenPipeError:
        # the reader went away (`scalelab explain X | head -1`): stop quietly; point stdout
        # at /dev/null so that the interpreter's final flush does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SpecError, DataError, ValueError, KeyError, FileNotFoundError, sqlite3.DatabaseError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"scalelab: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalelab: interrupted; finished trials are stored, rerun the same command to continue",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
