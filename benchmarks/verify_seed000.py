"""Verifying seed 000 (examples/seeds/, raw pixels) against the time of the original run, on
Keras's torch backend: the author's script as they wrote it (three fits: /255, raw, /1000)
run once without verification and once with SCALELAB_VERIFY=5 (each cause's remedy on copies
of the model, the five seeds of an arm stacked in one fit). Both runs in one invocation, so
the ratio is measured on the same machine under the same load.

    python benchmarks/verify_seed000.py [--quick] [--out benchmarks/results/verify_seed000_cpu_2core]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(folder: Path, verify: int, quick: bool) -> float:
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2", "SCALELAB_VERIFY": str(verify),
           "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "seeds" / "run.py"), "000",
                          *(["--quick"] if quick else []), "--db", str(folder / "scalelab.db")],
                         capture_output=True, text=True, env=env, timeout=7200)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3000 training images (as the CI example)")
    ap.add_argument("--out", help="write OUT.json")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        plain, verified = Path(tmp, "plain"), Path(tmp, "verified")
        plain.mkdir(), verified.mkdir()
        t_plain = run(plain, 0, a.quick)
        t_verified = run(verified, 5, a.quick)
        sys.path.insert(0, str(ROOT / "src"))
        from scalelab import Store
        from scalelab._verify_read import stored_verification

        store = Store(verified / "scalelab.db", readonly=True)
        wall = store.latest_study("seed-000.verify")["spec"]["wall_s"]
        records = stored_verification(store, "seed-000")
    r = dict(quick=a.quick, script_s=t_plain, script_with_verify_s=t_verified, verification_s=wall,
             ratio_verification_to_script=wall / t_plain, ratio_whole=t_verified / t_plain,
             verified=records, command="python benchmarks/verify_seed000.py" + (" --quick" if a.quick else ""))
    print(json.dumps({k: v for k, v in r.items() if k != "verified"}, indent=2))
    for rec in records:
        v = rec["verified"]
        print(rec["finding"], rec["level"], v["metric"], v["before_by_seed"], "->", v["after_by_seed"], v["signal"])
    if a.out:
        Path(a.out + ".json").write_text(json.dumps(r, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
