"""Are two stores' numbers bit-identical? Compares every study the two have in common (its
newest version in each), trial by trial (matched by level and seed): status, every epoch
metric and every probe record, as exact float equality (NaN equals NaN), and the arithmetic
each trial recorded (compiled or eager, vector instruction set).

    python benchmarks/compare_stores.py BEFORE.db AFTER.db [--study NAME ...]

Prints one line per study and exits 1 when any number differs. A trial whose BEFORE store
recorded no arithmetic at all (every path field empty: the first cross-validation runner
recorded none) is not compared on it; the line counts such trials. Used to show that a
refactor changed no result: run the built-in studies with the old and the new code into
two stores, then compare them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from scalelab._store import Store  # noqa: E402


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


PATH_FIELDS = ("step", "cpu_capability", "vec_isa", "compile_error")


def _trials(store: Store, name: str) -> dict[tuple, dict]:
    info = store.require_study(name)
    out = {}
    for t in store.trials(info["id"]):
        out[(json.dumps(t["level"], sort_keys=True), t["seed"])] = dict(
            status=t["status"], diverged_step=t["diverged_step"], epochs=store.epochs(t["id"]),
            path={k: t["env"].get(k) for k in PATH_FIELDS},
            probes=sorted(store.probes(t["id"])))
    return out


def unrecorded_paths(a: Store, name: str) -> int:
    """Trials of ``name`` in ``a`` that recorded no arithmetic (not compared on it)."""
    return sum(not any(t["path"].values()) for t in _trials(a, name).values())


def compare(a: Store, b: Store, name: str) -> list[str]:
    """The differences between study ``name`` in the two stores (empty: bit-identical)."""
    ta, tb = _trials(a, name), _trials(b, name)
    diffs = [f"trial {k} only in one store" for k in set(ta) ^ set(tb)]
    for k in sorted(set(ta) & set(tb)):
        x, y = ta[k], tb[k]
        if (x["status"], x["diverged_step"]) != (y["status"], y["diverged_step"]):
            diffs.append(f"{k}: status {x['status']} vs {y['status']}")
        if any(x["path"].values()) and x["path"] != y["path"]:
            diffs.append(f"{k}: path {x['path']} vs {y['path']}")
        if len(x["epochs"]) != len(y["epochs"]):
            diffs.append(f"{k}: {len(x['epochs'])} vs {len(y['epochs'])} epochs")
        for ea, eb in zip(x["epochs"], y["epochs"]):
            diffs += [f"{k} epoch {ea['epoch']} {m}: {ea[m]!r} vs {eb.get(m)!r}" for m in ea
                      if not _same(ea[m], eb.get(m))]
        if [p[:3] for p in x["probes"]] != [p[:3] for p in y["probes"]]:
            diffs.append(f"{k}: different probe records")
        else:
            diffs += [f"{k} probe {pa[:3]}: {pa[3]!r} vs {pb[3]!r}" for pa, pb in zip(x["probes"], y["probes"])
                      if not _same(pa[3], pb[3])]
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--study", action="append", help="compare only these studies (default: all in common)")
    args = ap.parse_args(argv)
    a, b = Store(args.before), Store(args.after)
    names = args.study or sorted({s["name"] for s in a.studies()} & {s["name"] for s in b.studies()})
    bad = 0
    for name in names:
        diffs = compare(a, b, name)
        n, blank = len(_trials(a, name)), unrecorded_paths(a, name)
        print(f"{name}: {n} trials, " + ("bit-identical" if not diffs else f"{len(diffs)} differences, e.g. {diffs[0]}")
              + (f" ({blank} recorded no arithmetic before: not compared on it)" if blank else ""))
        bad += bool(diffs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
