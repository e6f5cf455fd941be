"""Verify every cause each built-in study finds (issue 32): each study shrunk as in
tests/builtin_stores.SHRINK (Fashion-MNIST studies on synthetic IDX files), its causes'
remedies run next to them by the verification study kind (``scalelab verify``) on SEEDS seeds,
and per cause: the remedy, the metric before → after (± seed std), seeds improved, verified or
demoted; causes with no remedy to run are listed with the reason.

    python benchmarks/verify_builtins.py OUT_DIR FMNIST_DIR [--seeds 5] [--only NAME ...]

Writes OUT_DIR/verify_builtins.json and benchmarks/results/verify_builtins.md (one store per
study in OUT_DIR; a rerun resumes from them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from builtin_stores import small_builtin_store  # noqa: E402
from conftest import write_fashion_like  # noqa: E402

from scalelab import Store, builtin_studies, run_study  # noqa: E402
from scalelab._explain import explain  # noqa: E402
from scalelab._format import fmt, level_label  # noqa: E402
from scalelab._verify_build import verification_spec  # noqa: E402
from scalelab._verify_read import stored_verification, with_verification  # noqa: E402


def verify_one(name: str, out: Path, fm: Path, seeds: int) -> dict:
    db = out / f"{name}.db"
    t0 = time.perf_counter()
    store = Store(db)
    if store.latest_study(name) is None:
        store.close()
        small_builtin_store(name, db, fm)
        store = Store(db)
    t_study = time.perf_counter() - t0
    spec, skipped = verification_spec(store, name, seeds)
    if spec is not None:
        run_study(spec, store, progress=False)
    t_verify = time.perf_counter() - t0 - t_study
    findings = with_verification(explain(store, name), stored_verification(store, name))
    store.close()
    rows = []
    for f in findings:
        v = getattr(f, "verified", None)
        if v is not None:
            rows.append(dict(finding=f.id, level=level_label(f.level), verdict="verified" if v["helps"] else "demoted",
                             **{k: v[k] for k in ("remedy", "metric", "before", "after", "before_std", "after_std",
                                                  "diff_ci95", "seeds_improved", "seeds", "resolved")},
                             # a remedy that changes the loss, judged by the loss's own value: not comparable
                             incomparable="loss.name" in (v.get("change") or {}) and v["metric"] == "final train loss"))
    rows += [dict(finding=f.id, level=level_label(f.level), verdict="no remedy", why=why) for f, why in skipped]
    return dict(study=name, causes=rows, study_s=t_study, verify_s=t_verify)


def markdown(results: list[dict], seeds: int) -> str:
    lines = [f"# Verifying the built-in studies' causes ({seeds} seeds per arm)", "",
             "Each built-in study shrunk as in `tests/builtin_stores.py` (SHRINK; Fashion-MNIST studies on "
             "synthetic IDX files), each cause's remedy run next to its level by `scalelab verify` "
             f"({seeds} seeds, paired). Verdict: *verified* when the 95% CI of the paired change lies on the "
             "improving side (or every seed of ≥ 5 improved), else *demoted* to a note. The metric: R² for "
             "regression targets, else validation accuracy; where the remedy changes the loss or the targets' units "
             "(their losses' values do not compare) one that does not depend on the loss (trajectories: validation "
             "minFDE₂₀, the metric the study ranks its levels by; else accuracy); else the final train loss. "
             "Command: `python benchmarks/verify_builtins.py OUT_DIR FMNIST_DIR --seeds "
             f"{seeds}` on the shared 2-core CPU.", ""]
    for r in results:
        lines += [f"## {r['study']}", ""]
        if not r["causes"]:
            lines += ["No cause found (nothing to verify).", ""]
            continue
        lines += ["| cause | level | remedy | metric: before → after (± seed std) | seeds improved | verdict |",
                  "|---|---|---|---|---|---|"]
        for c in r["causes"]:
            if c["verdict"] == "no remedy":
                lines.append(f"| {c['finding']} | {c['level']} | — ({c['why']}) | — | — | not verifiable |")
                continue
            res = {True: "; signal gone", False: "; still fires", None: ""}[c["resolved"]]
            lines.append(f"| {c['finding']} | {c['level']} | {c['remedy']} | {c['metric']}: "
                         f"{fmt(c['before'], 3)} ± {fmt(c['before_std'], 2)} → {fmt(c['after'], 3)} ± "
                         f"{fmt(c['after_std'], 2)} | {c['seeds_improved']}/{c['seeds']} | {c['verdict']}{res}"
                         + (" (⚠ two different losses' values: not comparable)" if c.get("incomparable") else "") + " |")
        lines += [""]
    n = [c for r in results for c in r["causes"]]
    ver = sum(c["verdict"] == "verified" for c in n)
    dem = sum(c["verdict"] == "demoted" for c in n)
    lines += ["## Summary", "", f"{len(n)} causes found: {ver} verified, {dem} demoted, "
              f"{len(n) - ver - dem} with no remedy to run.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("fmnist")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    out, fm = Path(a.out), Path(a.fmnist)
    out.mkdir(parents=True, exist_ok=True)
    if not (fm / "train-images-idx3-ubyte.gz").exists():
        write_fashion_like(fm)
    path = out / "verify_builtins.json"
    done = {r["study"]: r for r in json.loads(path.read_text())} if path.exists() else {}
    for name in a.only or sorted(builtin_studies()):
        print(f"verifying {name} ...", flush=True)
        done[name] = verify_one(name, out, fm, a.seeds)
        path.write_text(json.dumps(list(done.values()), indent=1, default=str))
        for c in done[name]["causes"]:
            print(f"  {c['finding']} at {c['level']}: {c['verdict']}", flush=True)
    results = [done[n] for n in sorted(done)]
    (ROOT / "benchmarks" / "results" / "verify_builtins.md").write_text(markdown(results, a.seeds))
    (ROOT / "benchmarks" / "results" / "verify_builtins.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
