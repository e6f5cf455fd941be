"""The ``scalelab`` command line. Every user error is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scalelab", description="Controlled, multi-seed experiments on how scale "
                                "changes neural-network training.")
    sub = p.add_subparsers(dest="cmd", required=True)

    def run_opts(sp):
        sp.add_argument("--db", default="scalelab.db", help="SQLite store (default ./scalelab.db)")
        sp.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (or set SCALELAB_DATA)")
        sp.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the spec's train.device)")
        sp.add_argument("--group-size", type=int, help="models per stacked group (default: chosen for the device)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key, e.g. --set train.epochs=1 (repeatable)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar, no table")

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


def _run(spec, args) -> int:
    from ._report import print_table, summarize
    from ._store import Store
    from ._study import run_study, with_overrides

    if args.set:
        spec = with_overrides(spec, args.set)
    if args.group_size is not None and args.group_size < 1:
        raise ValueError(f"--group-size {args.group_size}: must be at least 1")
    store = Store(args.db)
    run_study(spec, store, data_dir=args.data_dir, device=args.device, progress=not args.quiet,
              group_size=args.group_size)
    if not args.quiet:
        print_table(summarize(store, spec.name), title=f"{spec.name} ({args.db})")
    return 0


def _main(argv) -> int:
    args = _parser().parse_args(argv)
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
        from ._report import print_table, summarize, to_csv
        from ._store import Store

        records = summarize(Store(args.db), args.study)
        if args.format == "json":
            print(json.dumps(records, indent=2))
        elif args.format == "csv":
            print(to_csv(records), end="")
        else:
            print_table(records, title=args.study)
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
    from ._data import DataError
    from ._spec import SpecError

    try:
        return _main(sys.argv[1:] if argv is None else argv)
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
