"""The ``scalelab`` command line. Every user error is one line on stderr and exit status 2.

Only the standard library is imported at module level: ``scalelab --help`` must stay fast.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from ._cli_json import findings_json as _findings_json, print_json
from ._cli_parser import CONFIRM_ABOVE, _parser


class _Interrupted(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _equivalence(args) -> int:
    from ._equivalence_check import check_equivalence
    from .optim._families import family_of

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
        print_json(r)
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


def _require_results(store, study: str, db) -> None:
    """One line, not a crash, for a study with no stored trial yet (its first group still
    training, or every trial of its run failed)."""
    info = store.require_study(study)
    if store.trials(info["id"]):
        return
    failed = store.failed(info["id"])
    why = f"its {len(failed)} trial(s) so far failed ({failed[0]['reason']})" if failed else "its first group may still be training, or its run stopped before one finished"
    raise ValueError(f"study {study!r} in {db} has no stored trial yet: {why}; run it to the end (scalelab study run "
                     f"{study} --db {db}, or scalelab run SPEC.toml --db {db}) and try again")


def _run(spec, args) -> int:
    from ._executors import make_executor
    from ._spec import count_trials
    from ._store import Store
    from ._study import run_study, with_overrides
    from ._workers import workers_arg

    sets = [*args.set, *([f"train.keep={args.keep}"] if args.keep else [])]
    if sets:
        spec = with_overrides(spec, sets)
    if args.group_size is not None and args.group_size < 1:
        raise ValueError(f"--group-size {args.group_size}: must be at least 1")
    n = count_trials(spec)
    if n > CONFIRM_ABOVE and not args.yes:
        raise ValueError(f"{spec.name} has {n:,} trials (more than {CONFIRM_ABOVE:,}); add --yes to run them all, "
                         f"or narrow the grid or seeds")
    if not args.quiet and n > 1000:   # expanding a big grid takes a while: say what is coming first
        print(f"{spec.name}: {n:,} trials; expanding", file=sys.stderr, flush=True)
    options = {k: v for k, v in (("max_retries", args.max_retries), ("cpus_per_group", args.cpus_per_group))
               if v is not None}
    executor = make_executor(args.executor, args.data_dir, args.device, args.address, **options)
    workers = workers_arg(args.workers, args.executor, args.device or spec.train.device)
    store = Store(args.db)

    def plan(c):
        if not args.quiet:
            done = c["stored"] + c["reused"]
            head = f"resuming: {done} of {c['trials']:,} trials stored" if done and c["todo"] else f"{c['trials']:,} trials"
            print(f"{spec.name}: {head}: {c['stored']} already stored, {c['reused']} reused from other studies in "
                  f"{args.db}, {c['todo']} to train", file=sys.stderr, flush=True)

    sid = run_study(spec, store, data_dir=args.data_dir, device=args.device, progress=not args.quiet,
                    group_size=args.group_size, probes=args.probes, executor=executor,
                    progress_every=args.progress_every, keep_checkpoints=args.keep_checkpoints, on_plan=plan,
                    workers=workers)
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
    from ._explain._cv_view import is_cv_study
    from .report._cv import print_cv
    from .report._summary import print_table, summarize

    if is_cv_study(store, study):   # a cross-validated study: arms × seeds × splits
        print_cv(store, study)
        return

    print_table(summarize(store, study), title=title)
    print()
    _print_explain(store, study, None)


def _print_explain(store, study: str, trial) -> None:
    from ._explain import render_text
    from .report._answers import answers

    ans, findings = answers(store, study, trial)
    print("Answer:")
    for a in ans:
        print(_wrap(f"- {a.text}"))
    if findings:
        print(f"\nFindings (scalelab explain {study}):")
    print("".join(_wrap(line) + "\n" for line in render_text(findings).splitlines()), end="")


def _wrap(line: str, width: int | None = None) -> str:
    """A bulleted line wrapped between words at the terminal's width, continuation lines
    indented under the text; unchanged into a file or a pipe (one line per answer, for grep).
    The terminal's own wrapping broke words in two."""
    import shutil
    import textwrap

    if width is None:
        if not sys.stdout.isatty():
            return line
        width = shutil.get_terminal_size().columns
    return textwrap.fill(line, width=max(width, 20), subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def _listing(args) -> int:
    from .report._listing import studies_table, study_rows, trial_rows, trials_table
    from .report._console import print_rich

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
        print_json(rows)
    elif args.format == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        print_rich(trials_table(rows, f"{args.study} ({args.db})"))
    return 0


def _export(args) -> int:
    from ._store._export import tidy_csv

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


def _predict(args) -> int:
    import numpy as np

    from ._load import load

    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples {args.samples}: give at least 1")
    try:
        with np.load(args.input, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ValueError(f"--input {args.input}: no such file; save the inputs with numpy.savez(path, X=X)") from None
    except (ValueError, OSError) as e:
        raise ValueError(f"--input {args.input}: not a readable .npz ({e}); save it with numpy.savez(path, X=X)") from None
    if "X" not in arrays and len(arrays) != 1:
        raise ValueError(f"--input {args.input}: no array X (it has {', '.join(arrays) or 'none'}); save the inputs "
                         f"as X")
    X = arrays.get("X", next(iter(arrays.values())))
    model = load(args.study, args.trial, db=args.db, data_dir=args.data_dir)
    out = {"prediction": model.predict(X)}
    if model.g.classification:
        out["label"] = out["prediction"].argmax(-1)
    if args.samples:
        out["samples"] = model.sample(X, args.samples)
    np.savez(args.output, **out)
    print(f"{args.output}: {', '.join(f'{k} {v.shape}' for k, v in out.items())} from trial {model.trial['id']} "
          f"({model.which} parameters, epoch {model.epoch})", file=sys.stderr)
    return 0


def _main(args) -> int:
    if args.cmd == "verify" or getattr(args, "verify", False):   # each cause's remedy, measured (_cli_verify)
        from ._cli_verify import main_verify
        return main_verify(args)
    if args.cmd == "run":
        from ._spec import load_spec

        return _run(load_spec(args.spec), args)
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
        from .report._summary import summarize, to_csv

        store = _open_store(args.db)
        _require_results(store, args.study, args.db)
        from ._explain._cv_view import is_cv_study
        from .report._cv import summary_json

        if is_cv_study(store, args.study) and args.format != "table":
            rows = summary_json(store, args.study)
            if args.format == "json":
                print_json(rows)
            else:   # csv: one row per trial
                import csv

                w = csv.DictWriter(sys.stdout, fieldnames=list(rows["trials"][0]), lineterminator="\n")
                w.writeheader()
                w.writerows(rows["trials"])
            return 0
        records = summarize(store, args.study)
        if args.format == "json":
            print_json(records)
        elif args.format == "csv":
            print(to_csv(records), end="")
        else:
            _print_results(store, args.study, args.study)
            from .attach._show import watched_lines   # a watched run: the user's own model, loss and optimizer

            lines = watched_lines(store, args.study)
            if lines:
                print("\n".join(lines))
        _report_failed(store, store.require_study(args.study)["id"])
        return 0
    if args.cmd == "equivalence":
        return _equivalence(args)
    if args.cmd == "report":
        from .report._html import write_report

        store = _open_store(args.db)
        _require_results(store, args.study, args.db)
        out = write_report(store, args.study, args.output or f"reports/{args.study}.html", args.png,
                           args.band)
        print(f"report written to {out.resolve()} ({out.stat().st_size / 1e6:.2f} MB)")
        return 0
    if args.cmd == "explain":
        from ._explain import explain
        from ._explain._cv_view import is_cv_study

        store = _open_store(args.db)
        _require_results(store, args.study, args.db)
        if is_cv_study(store, args.study):
            from ._explain._cv import cv_findings
            from ._explain._cv_view import arm_summaries
            from .report._answers import answer

            spec, arms = arm_summaries(store, args.study)
            findings = cv_findings(arms)
            if args.format == "json":
                print_json(_findings_json(findings))
            else:
                print(f"Answer:\n- {answer(spec, arms)}\n\nFindings (scalelab explain {args.study}):")
                print("".join(f"- [{f.id}] {f.text}\n" for f in findings), end="")
            return 0
        if args.format == "json":
            findings = explain(_open_store(args.db), args.study, args.trial)
            print_json(_findings_json(findings))
        else:
            _print_explain(_open_store(args.db), args.study, args.trial)
        return 0
    if args.cmd in ("ls", "trials"):
        return _listing(args)
    if args.cmd == "export":
        return _export(args)
    if args.cmd == "predict":
        return _predict(args)
    if args.cmd == "data":
        from .data._fashion_mnist import FASHION_URL, fetch_fashion_mnist, load_fashion_mnist

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
    from .data import DataError
    from ._spec import SpecError
    from ._store import StoreError

    def on_term(signum, frame):
        raise _Interrupted("SIGTERM")

    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main_thread else None
    try:
        rc = _main(args)
        sys.stdout.flush()   # a closed pipe shows here, inside the try
        return rc
    except BrokenPipeError:
        # the reader went away (`scalelab explain X | head -1`): stop quietly; point stdout
        # at /dev/null so that the interpreter's final flush does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SpecError, DataError, StoreError, ValueError, KeyError, FileNotFoundError, IsADirectoryError,
            OverflowError, sqlite3.DatabaseError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"scalelab: error: {msg}", file=sys.stderr)
        return 2
    except sqlite3.Error as e:   # every store error names the file
        print(f"scalelab: error: {getattr(args, 'db', 'the store')}: {e}", file=sys.stderr)
        return 2
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
