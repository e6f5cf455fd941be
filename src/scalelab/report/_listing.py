"""What a store holds, for ``scalelab ls`` (studies: trials done of the spec's total,
status, last update) and ``scalelab trials NAME`` (each trial's id, level, seed, status
and final metrics: the ids ``explain --trial`` takes)."""

from __future__ import annotations

import math
import time

from .._format import fmt

from .._store._levels import read_levels
from .._store import Store


def study_rows(store: Store) -> list[dict]:
    """One row per stored study version: name, id, trials stored / the spec's total, diverged, last update."""
    import json

    from .._spec._count import count_trials

    rows = []
    for s in store.studies():
        info = store.conn.execute("SELECT spec FROM studies WHERE id=?", (s["id"],)).fetchone()
        last = store.conn.execute("SELECT MAX(finished) FROM trials WHERE study_id=?", (s["id"],)).fetchone()[0]
        try:
            # counted on the stored JSON, not expanded: ls reads a store of many studies at once, and
            # resolves no trial (nor imports pydantic or torch) to count them
            total = count_trials(json.loads(info[0]))
        except (ValueError, TypeError, AttributeError):
            total = None    # a spec this version cannot count: counts only
        status = "empty" if not s["n_trials"] else "complete" if total is not None and s["n_trials"] >= total \
            else "partial"
        rows.append(dict(name=s["name"], id=s["id"], trials=s["n_trials"], total=total, diverged=s["n_diverged"],
                         status=status, last_update=last or s["created"]))
    return rows


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def trial_rows(store: Store, study: str) -> list[dict]:
    """One row per trial of the newest study of that name, with its final epoch's metrics."""
    out = []
    for lv in read_levels(store, study):
        for rec in lv.trials:
            t, last = rec.trial, rec.epochs[-1] if rec.epochs else {}
            transformed = t["spec"]["target"]["transform"] != "none" and t["spec"]["loss"]["name"] != "crossentropy"
            mse = last.get("test_mse", math.nan)
            out.append(dict(id=t["id"], level=lv.label, seed=t["seed"], status=t["status"],
                            diverged_step=t["diverged_step"], epochs=len(rec.epochs),
                            train_loss=last.get("train_loss"), loss_units="transformed" if transformed else "original",
                            test_acc=last.get("test_acc"), test_rmse=math.sqrt(mse) if math.isfinite(mse) else None,
                            test_r2=last.get("test_r2")))
    return out


def trials_table(rows: list[dict], title: str):
    """A rich Table of :func:`trial_rows` (columns that no trial has a value for are left out)."""
    from rich.table import Table

    ok = lambda k: any(r[k] is not None and math.isfinite(r[k]) for r in rows)  # noqa: E731
    units = {r["loss_units"] for r in rows}
    loss = "train loss" + (" (transformed units)" if units == {"transformed"} else
                           " (ᵗ: transformed units)" if "transformed" in units else "")
    cols = [("id", "id"), ("level", "level"), ("seed", "seed"), ("status", "status"), ("train_loss", loss)]
    cols += [(k, name) for k, name in (("test_acc", "test acc"), ("test_rmse", "test RMSE"), ("test_r2", "test R²"))
             if ok(k)]
    table = Table(title=title, caption="explain one trial: scalelab explain STUDY --trial ID")
    for k, name in cols:
        table.add_column(name, justify="right" if k not in ("level", "status") else "left", overflow="fold")
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r[k]
            if k == "status" and r["status"] == "diverged":
                v = f"diverged at step {r['diverged_step']}"
            elif k == "train_loss":
                v = fmt(v if v is not None and math.isfinite(v) else None) + \
                    ("ᵗ" if r["loss_units"] == "transformed" and len(units) > 1 else "")
            elif isinstance(v, float):
                v = fmt(v if math.isfinite(v) else None)
            cells.append(str(v))
        table.add_row(*cells)
    return table


def studies_table(rows: list[dict], path: str):
    from rich.table import Table

    table = Table(title=f"studies in {path}", caption="trials: stored / the spec's total")
    for name in ("study", "id", "trials", "diverged", "status", "last update"):
        table.add_column(name, overflow="fold", justify="right" if name in ("id", "trials", "diverged") else "left")
    for r in rows:
        table.add_row(r["name"], str(r["id"]), f"{r['trials']}/{r['total'] if r['total'] is not None else '?'}",
                      str(r["diverged"]), r["status"], when(r["last_update"]))
    return table
