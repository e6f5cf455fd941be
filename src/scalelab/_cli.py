"""The ``scalelab`` command line. Every user error is one line on stderr and exit status 2.

Only the standard library is imported at module level: ``scalelab --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys


CONFIRM_ABOVE = 10_000   # trials; a bigger grid needs --yes


class _Interrupted(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the same one line as every other error."""

    def error(self, message):
        print(f"scalelab: error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scalelab", description="Controlled, multi-seed experiments on how scale "
                                "changes neural-network training.")
    sub = p.add_subparsers(dest="cmd", required=True)

    def run_opts(sp):
        sp.add_argument("--db", default="scalelab.db", help="SQLite store (default ./scalelab.db)")
        sp.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (or set SCALELAB_DATA)")
        sp.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the spec's train.device)")
        sp.add_argument("--group-size", type=int, help="models per stacked group (default: chosen for the device)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key, e.g. --set train.epochs=1 (repeatable)")
        sp.add_argument("--probes", choices=("none", "cheap", "standard", "full"),
                        help="probe preset to record (default: the spec's probes.preset)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar, no table")
        sp.add_argument("--yes", action="store_true",
                        help=f"run a grid of more than {CONFIRM_ABOVE:,} trials without asking")
        sp.add_argument("--keep-checkpoints", action="store_true",
                        help="keep each group's last per-epoch checkpoint in the store after it finishes")

    r = sub.add_parser("run", help="run a study from a TOML spec file")
    r.add_argument("spec")
    run_opts(r)

    st = sub.add_parser("study", help="built-in studies")
    stsub = st.add_subparsers(dest="study_cmd", required=True)
    stsub.add_parser("list", help="list the built-in studies")
    sr = stsub.add_parser("run", help="run a built-in study")
    sr.add_argument("name")
    run_opts(sr)
    ss = stsub.add_parser("spec", help="print a built-in study's TOML spec")
    ss.add_argument("name")

    sh = sub.add_parser("show", help="results of a stored study")
    sh.add_argument("study")
    sh.add_argument("--db", default="scalelab.db")
    sh.add_argument("--format", choices=("table", "json", "csv"), default="table")

    rp = sub.add_parser("report", help="write a self-contained HTML report of a stored study")
    rp.add_argument("study")
    rp.add_argument("--db", default="scalelab.db")
    rp.add_argument("-o", "--output", help="HTML file to write (default reports/STUDY.html)")
    rp.add_argument("--png", metavar="DIR", help="also write every figure as PNG and SVG into DIR")

    ex = sub.add_parser("explain", help="findings (mechanisms, with numbers) from a stored study's probes")
    ex.add_argument("study")
    ex.add_argument("--db", default="scalelab.db")
    ex.add_argument("--trial", type=int, help="one trial's id instead of every sweep level")
    ex.add_argument("--format", choices=("text", "json"), default="text")

    eq = sub.add_parser("equivalence", help="prove the exact reparametrization that makes an input scale a no-op")
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

    d = sub.add_parser("data", help="data sets")
    dsub = d.add_subparsers(dest="data_cmd", required=True)
    f = dsub.add_parser("fetch", help="download a data set from its official location")
    f.add_argument("dataset", choices=("fashion-mnist",))
    f.add_argument("--dest", help="folder to write to (default ~/.scalelab/data/fashion-mnist)")
    f.add_argument("--url", help="base URL (default: the official location)")
    c = dsub.add_parser("check", help="find and verify a data set")
    c.add_argument("dataset", choices=("fashion-mnist",))
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
    """An existing store, read-only (reading commands never create or change a file)."""
    from ._store import Store

    return Store(path, readonly=True)   # refuses a missing or foreign file; never changes it


def _run(spec, args) -> int:
    from ._spec import count_trials
    from ._store import Store
    from ._study import run_study, with_overrides

    if args.set:
        spec = with_overrides(spec, args.set)
    if args.group_size is not None and args.group_size < 1:
        raise ValueError(f"--group-size {args.group_size}: must be at least 1")
    n = count_trials(spec)
    if n > CONFIRM_ABOVE and not args.yes:
        raise ValueError(f"{spec.name} has {n:,} trials (more than {CONFIRM_ABOVE:,}); add --yes to run them all, "
                         f"or narrow the grid or seeds")
    if not args.quiet and n > 1000:   # expanding a big grid takes a while: say what is coming first
        print(f"{spec.name}: {n:,} trials; expanding", file=sys.stderr, flush=True)
    store = Store(args.db)

    def plan(c):
        if not args.quiet:
            print(f"{spec.name}: {c['trials']:,} trials: {c['stored']} already stored, {c['reused']} reused from "
                  f"other studies in {args.db}, {c['todo']} to train", file=sys.stderr, flush=True)

    run_study(spec, store, data_dir=args.data_dir, device=args.device, progress=not args.quiet,
              group_size=args.group_size, probes=args.probes, keep_checkpoints=args.keep_checkpoints, on_plan=plan)
    if not args.quiet:
        _print_results(store, spec.name, f"{spec.name} ({args.db})")
    return 0


def _print_results(store, study: str, title: str) -> None:
    """The summary table, then the findings when probes were recorded."""
    from ._explain import explain, render_text
    from ._report import print_table, summarize

    print_table(summarize(store, study), title=title)
    findings = explain(store, study)
    if findings:
        print(f"\nFindings (scalelab explain {study}):")
        print(render_text(findings), end="")


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
        return 0
    if args.cmd == "equivalence":
        return _equivalence(args)
    if args.cmd == "report":
        from ._html import write_report

        out = write_report(_open_store(args.db), args.study, args.output or f"reports/{args.study}.html", args.png)
        print(f"report written to {out.resolve()} ({out.stat().st_size / 1e6:.2f} MB)")
        return 0
    if args.cmd == "explain":
        from ._explain import explain, render_text

        findings = explain(_open_store(args.db), args.study, args.trial)
        if args.format == "json":
            print(json.dumps([f.as_dict() for f in findings], indent=2, default=str))
        else:
            print(render_text(findings), end="")
        return 0
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
    import signal

    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from ._data import DataError
    from ._spec import SpecError
    from ._store import StoreError

    def on_term(signum, frame):
        raise _Interrupted("SIGTERM")

    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main_thread else None
    try:
        rc = _main(args)
        sys.stdout.flush()   # a closed pipe shows here, inside the handler below, not at exit
        return rc
    except (SpecError, DataError, StoreError, ValueError, KeyError, FileNotFoundError, IsADirectoryError,
            OverflowError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"scalelab: error: {msg}", file=sys.stderr)
        return 2
    except sqlite3.Error as e:   # every store error names the file
        print(f"scalelab: error: {getattr(args, 'db', 'the store')}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`scalelab show X | head`): exit quietly, as SIGPIPE would
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as e:
        how = "SIGTERM" if isinstance(e, _Interrupted) else "interrupt"
        print(f"scalelab: stopped by {how}; every finished epoch is stored (at most the epoch in progress is "
              f"lost), rerun the same command to continue", file=sys.stderr)
        return 130 if how == "interrupt" else 143
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
