"""``scalelab verify NAME`` and ``scalelab explain NAME --verify``: each cause's remedy measured
next to it across seeds. A spec study's verification is trained here (once: it is stored as the
study ``NAME.verify`` and a rerun resumes it); a watched run's was made where the user's code
ran (``Diagnose(..., verify=5)``, ``scalelab.watch(..., verify=5)``) and is only read."""

from __future__ import annotations

import sys

from ._cli_json import findings_json, print_json


def _train(store, study: str, args) -> list:
    """Train (or resume) the verification of a spec study; the causes left out, with why."""
    from ._executors import make_executor
    from ._study import run_study
    from ._verify_build import verification_spec

    seeds = getattr(args, "seeds", None)
    if seeds is not None and seeds < 2:
        raise ValueError(f"--seeds {seeds}: a seed spread needs at least 2 seeds (5 is the usual)")
    spec, skipped = verification_spec(store, study, seeds)
    if spec is None:
        return skipped
    quiet = getattr(args, "quiet", False) or args.format == "json"
    executor = make_executor(getattr(args, "executor", "local"), getattr(args, "data_dir", None),
                             getattr(args, "device", None), getattr(args, "address", None))

    def plan(c):
        if not quiet:
            print(f"{spec.name}: {c['trials']} trials ({len(spec.verify.causes)} cause(s) × before/after × seeds): "
                  f"{c['stored']} stored, {c['reused']} reused, {c['todo']} to train", file=sys.stderr, flush=True)

    run_study(spec, store, data_dir=getattr(args, "data_dir", None), device=getattr(args, "device", None),
              progress=not quiet, executor=executor, group_size=getattr(args, "group_size", None), on_plan=plan,
              progress_every=getattr(args, "progress_every", 30.0))
    return skipped


def main_verify(args) -> int:
    from ._explain import explain, render_text
    from ._store import Store
    from ._verify_read import stored_verification, verification_text, with_verification

    train = args.cmd == "verify"
    store = Store(args.db, readonly=not train)
    info = store.require_study(args.study)
    watched = bool((info["spec"] or {}).get("watched"))
    skipped: list = []
    records = stored_verification(store, args.study)
    if records is None and watched:
        raise ValueError(f"{args.study!r} is a watched run and has no stored verification: verify it where your code "
                         f"runs, Diagnose({args.study!r}, verify=5) (Keras) or scalelab.watch(..., verify=5) (PyTorch), "
                         f"or set SCALELAB_VERIFY=5 and run the script again")
    if not watched and (train or records is None):
        if not train:   # explain --verify of a study never verified: train it now (a writable store)
            store.close()
            store = Store(args.db)
        skipped = _train(store, args.study, args)
        records = stored_verification(store, args.study)
    findings = with_verification(explain(store, args.study), records)
    if args.format == "json":
        print_json(findings_json(findings))
        return 0
    print(f"Findings (scalelab explain {args.study} --verify):")
    print(render_text(findings), end="")
    print()
    text = verification_text(findings)
    print(text or "No cause was verified.", end="\n" if not text else "")
    for f, why in skipped:
        print(f"- [{f.id}] at {f.level}: not verified: {why}")
    return 0
