"""The gallery of broken programs (examples/gallery/): each program and its fixed twin,
run with the one added line (scalelab.keras.Diagnose / scalelab.watch), scored on what
scalelab names first.

    python benchmarks/diagnose_gallery.py                 # all, table on stdout
    python benchmarks/diagnose_gallery.py --out benchmarks/results/diagnose_gallery_cpu_2core
    python benchmarks/diagnose_gallery.py --only k01,t03  # some
    python benchmarks/diagnose_gallery.py --verify 5 --out benchmarks/results/verify_gallery_5seeds_cpu_2core

``--verify N``: the broken programs only, each run with its causes verified (SCALELAB_VERIFY=N:
each remedy on copies of the user's model, N seeds); scored on the correctly named cases (the
root cause among the causes): "helps" (the named cause's remedy improved the metric, 95%), "does
not help" (demoted), or "no remedy run" (the cause has none to run on a copy).

Broken program: "root cause first" (the first finding with role cause is one of the ids
the program's ROOT_CAUSE names), "root cause later" (named, after another cause),
"symptom only" (causes, none of them the root), "nothing" (no cause), "crashed" (an
exception escaped the user's program). Fixed twin: "clean" (no cause) or "blamed" (the
causes named). Each program runs in a fresh store.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import sys
import tempfile
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"


def programs(only: list[str] | None = None) -> list[str]:
    names = sorted(p.stem for p in GALLERY.glob("[kt][0-9][0-9]_*.py"))
    return [n for n in names if not only or n.split("_")[0] in only or n in only]


def run_one(name: str, fixed: bool, db: str) -> dict:
    if str(GALLERY) not in sys.path:
        sys.path.insert(0, str(GALLERY))
    mod = importlib.import_module(name)
    buf = io.StringIO()
    t0 = time.perf_counter()
    try:
        with redirect_stdout(buf):
            findings = mod.main(fixed=fixed, study=name.split("_")[0], db=db, verbose=True)
    except Exception as e:   # noqa: BLE001 - the outcome "crashed" is what is measured
        return dict(outcome="crashed", error=f"{type(e).__name__}: {e}", trace=traceback.format_exc(limit=3),
                    wall_s=time.perf_counter() - t0, output=buf.getvalue())
    causes = [f.id for f in findings or [] if f.role == "cause"]
    return dict(causes=causes, ids=[f.id for f in findings or []], wall_s=time.perf_counter() - t0,
                output=buf.getvalue(), root=list(mod.ROOT_CAUSE), category=mod.CATEGORY)


def score(broken: dict, fixed: dict) -> tuple[str, str]:
    if broken.get("outcome") == "crashed":
        b = "crashed"
    elif not broken["causes"]:
        b = "nothing"
    elif broken["causes"][0] in broken["root"]:
        b = "root cause first"
    elif set(broken["causes"]) & set(broken["root"]):
        b = "root cause later"
    else:
        b = "symptom only"
    if fixed.get("outcome") == "crashed":
        f = "crashed"
    else:
        f = "clean" if not fixed["causes"] else "blamed: " + ", ".join(fixed["causes"])
    return b, f


def main(argv=None) -> int:
    import torch

    # what is measured is what scalelab says, not speed: one thread keeps a loaded machine from
    # spending its time in thread contention on these tiny models
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated program prefixes (k01,t03)")
    ap.add_argument("--out", default="", help="write OUT.json and OUT.md")
    ap.add_argument("--verbose", action="store_true", help="print each run's scalelab output")
    ap.add_argument("--verify", type=int, default=0, metavar="N", help="verify each broken program's causes, N seeds")
    args = ap.parse_args(argv)
    if args.verify:
        return verify_mode(args)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in programs([s for s in args.only.split(",") if s]):
            broken = run_one(name, False, str(Path(tmp) / f"{name}-broken.db"))
            fixed = run_one(name, True, str(Path(tmp) / f"{name}-fixed.db"))
            b, f = score(broken, fixed)
            rows.append(dict(program=name, root_cause=broken.get("root") or [], category=broken.get("category", ""),
                             broken=b, broken_causes=broken.get("causes", []), fixed=f,
                             fixed_causes=fixed.get("causes", []), wall_s=broken["wall_s"] + fixed["wall_s"],
                             error=broken.get("error") or fixed.get("error")))
            if args.verbose:
                print(f"--- {name} (broken)\n{broken['output']}{broken.get('trace', '')}\n--- {name} (fixed)\n"
                      f"{fixed['output']}{fixed.get('trace', '')}")
            print(f"{name:32s} {b:18s} {f}", flush=True)
    n = len(rows)
    first = sum(r["broken"] == "root cause first" for r in rows)
    clean = sum(r["fixed"] == "clean" for r in rows)
    crashed = sum(r["broken"] == "crashed" or r["fixed"] == "crashed" for r in rows)
    summary = dict(programs=n, root_cause_first=first, fixed_clean=clean, crashed=crashed,
                   root_cause_first_pct=100.0 * first / max(n, 1), fixed_clean_pct=100.0 * clean / max(n, 1),
                   wall_s=time.perf_counter() - t0, command="python benchmarks/diagnose_gallery.py" +
                   (f" --only {args.only}" if args.only else ""))
    table = ["| program | root cause | broken: scalelab says | fixed twin |", "|---|---|---|---|"]
    table += [f"| {r['program']} | {'/'.join(r['root_cause'])} | {r['broken']}"
              f"{'' if r['broken'] == 'root cause first' else ' (' + ', '.join(r['broken_causes']) + ')'} | "
              f"{r['fixed']} |" for r in rows]
    table.append(f"\nroot cause named first: {first}/{n} ({summary['root_cause_first_pct']:.0f}%); fixed twins clean: "
                 f"{clean}/{n} ({summary['fixed_clean_pct']:.0f}%); crashed: {crashed}; {summary['wall_s']:.0f} s")
    print("\n".join(table))
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(dict(summary=summary, rows=rows), indent=2) + "\n")
        Path(args.out + ".md").write_text("\n".join(table) + "\n")
    return 0


def verify_mode(args) -> int:
    """Each broken program with SCALELAB_VERIFY=N; the named root cause's remedy scored."""
    from scalelab import Store
    from scalelab._verify_read import stored_verification

    os.environ["SCALELAB_VERIFY"] = str(args.verify)
    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in programs([s for s in args.only.split(",") if s]):
            db = str(Path(tmp) / f"{name}.db")
            r = run_one(name, False, db)
            named = [c for c in r.get("causes", []) if c in r.get("root", ())]
            rec = {}
            if Path(db).exists():
                with Store(db, readonly=True) as store:
                    rec = {x["finding"]: x["verified"] for x in stored_verification(store, name.split("_")[0]) or []}
            v = next((rec[c] for c in named if c in rec), None)
            outcome = ("not named" if not named else "no remedy run" if v is None else
                       "helps" if v["helps"] else "does not help")
            rows.append(dict(program=name, root=list(r.get("root", ())), named=named, outcome=outcome,
                             verified=v, wall_s=r["wall_s"], error=r.get("error")))
            eff = (f"{v['metric']} {v['before']:.3g} -> {v['after']:.3g}, {v['seeds_improved']}/{v['seeds']}"
                   if v else "")
            print(f"{name:32s} {outcome:14s} {eff}", flush=True)
    ran = [r for r in rows if r["outcome"] in ("helps", "does not help")]
    helps = sum(r["outcome"] == "helps" for r in ran)
    summary = dict(programs=len(rows), named=sum(bool(r["named"]) for r in rows), verified=len(ran), helps=helps,
                   helps_pct=100.0 * helps / max(len(ran), 1), no_remedy=sum(r["outcome"] == "no remedy run" for r in rows),
                   seeds=args.verify, wall_s=time.perf_counter() - t0,
                   command=f"python benchmarks/diagnose_gallery.py --verify {args.verify}"
                   + (f" --only {args.only}" if args.only else ""))
    table = ["| program | named root cause | verify | effect |", "|---|---|---|---|"]
    table += [f"| {r['program']} | {'/'.join(r['named']) or '-'} | {r['outcome']} | "
              + (f"{r['verified']['remedy']}: {r['verified']['metric']} {r['verified']['before']:.3g} → "
                 f"{r['verified']['after']:.3g} ({r['verified']['seeds_improved']}/{r['verified']['seeds']} seeds)"
                 if r["verified"] else "") + " |" for r in rows]
    table.append(f"\nnamed fix helps: {helps}/{len(ran)} ({summary['helps_pct']:.0f}%) of the correctly named causes "
                 f"whose remedy ran; no remedy run: {summary['no_remedy']}; {summary['wall_s']:.0f} s")
    print("\n".join(table))
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(dict(summary=summary, rows=rows), indent=2, default=str) + "\n")
        Path(args.out + ".md").write_text("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
