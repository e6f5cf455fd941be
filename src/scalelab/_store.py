"""SQLite store: studies, trials with their resolved spec and environment, per-epoch
metrics and probe records. A trial's rows are written in one transaction when it
finishes, so an interrupted study never leaves a half-stored trial, and a rerun skips
what is already there (``UNIQUE(study_id, key)``)."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

from ._suggest import did_you_mean

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE(name, spec_hash)
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    key TEXT NOT NULL,
    level TEXT NOT NULL,
    seed INTEGER NOT NULL,
    spec TEXT NOT NULL,
    env TEXT NOT NULL,
    status TEXT NOT NULL,          -- done, diverged (outcomes) or failed (retried on the next run)
    reason TEXT,
    diverged_step INTEGER,
    wall_s REAL,
    finished REAL NOT NULL,
    UNIQUE(study_id, key)
);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, test_loss REAL, test_acc REAL,
    val_mse REAL, val_r2 REAL, val_corr REAL, test_mse REAL, test_r2 REAL, test_corr REAL,
    PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS probes (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    probe TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (trial_id, step, probe, name)
);
"""

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
           # regression, in the targets' original units
           "val_mse", "val_r2", "val_corr", "test_mse", "test_r2", "test_corr")


def _num(x):
    """SQLite stores NaN as NULL; keep inf as text-free floats (SQLite accepts them)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


class Store:
    def __init__(self, path: str | Path = "scalelab.db"):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise FileNotFoundError(f"folder {self.path.parent} for the store does not exist; create it or "
                                    f"pass another --db")
        self.conn = sqlite3.connect(str(self.path), timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        # stores written before the regression metrics existed: add their columns
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(epochs)")}
        with self.conn:
            for m in METRICS:
                if m not in have:
                    self.conn.execute(f"ALTER TABLE epochs ADD COLUMN {m} REAL")
            # and stores written before failed trials were recorded
            if "reason" not in {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}:
                self.conn.execute("ALTER TABLE trials ADD COLUMN reason TEXT")

    def close(self):
        self.conn.close()

    # -- writing

    def study_id(self, name: str, spec_hash: str, spec: dict) -> int:
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO studies(name, spec_hash, spec, created) VALUES (?,?,?,?)",
                              (name, spec_hash, json.dumps(spec, default=str), time.time()))
        return self.conn.execute("SELECT id FROM studies WHERE name=? AND spec_hash=?", (name, spec_hash)).fetchone()[0]

    def finished_keys(self, study_id: int) -> set[str]:
        """Keys of trials with an outcome; a failed trial is not finished, a rerun tries it again."""
        return {r[0] for r in self.conn.execute("SELECT key FROM trials WHERE study_id=? AND status!='failed'",
                                                (study_id,))}

    def save_trial(self, study_id: int, result, env: dict) -> None:
        """All rows of one finished trial, in one transaction; a second save of the same trial is ignored,
        except that an outcome replaces an earlier failure."""
        t = result.trial
        with self.conn:
            self.conn.execute("DELETE FROM trials WHERE study_id=? AND key=? AND status='failed'", (study_id, t.key))
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO trials(study_id, key, level, seed, spec, env, status, reason, diverged_step,"
                " wall_s, finished) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (study_id, t.key, json.dumps(t.level, default=str), t.seed, json.dumps(t.spec.model_dump(), default=str),
                 json.dumps(result.env or env), result.status, result.reason, result.diverged_step, result.wall_s,
                 time.time()))
            if cur.rowcount == 0:
                return
            tid = cur.lastrowid
            self.conn.executemany(
                f"INSERT INTO epochs(trial_id, epoch, {', '.join(METRICS)}) VALUES (?,?,{','.join('?' * len(METRICS))})",
                [(tid, e["epoch"], *(_num(e.get(m)) for m in METRICS)) for e in result.epochs])
            if result.probes:
                self.conn.executemany("INSERT OR REPLACE INTO probes(trial_id, step, probe, name, value)"
                                      " VALUES (?,?,?,?,?)",
                                      [(tid, s, p, n, _num(v)) for s, p, n, v in result.probes])

    # -- reading

    def studies(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT s.id, s.name, s.created, COUNT(t.id) - COALESCE(SUM(t.status='failed'), 0),"
            " SUM(t.status='diverged'), SUM(t.status='failed') FROM studies s "
            "LEFT JOIN trials t ON t.study_id = s.id GROUP BY s.id ORDER BY s.id").fetchall()
        return [dict(id=r[0], name=r[1], created=r[2], n_trials=r[3], n_diverged=r[4] or 0, n_failed=r[5] or 0)
                for r in rows]

    def latest_study(self, name: str) -> dict | None:
        """The newest study of that name (a changed spec makes a new study; the newest is shown)."""
        r = self.conn.execute("SELECT id, name, spec FROM studies WHERE name=? ORDER BY id DESC LIMIT 1",
                              (name,)).fetchone()
        return None if r is None else dict(id=r[0], name=r[1], spec=json.loads(r[2]))

    def require_study(self, name: str) -> dict:
        """:meth:`latest_study`, or a KeyError that says what is stored and how to run it."""
        info = self.latest_study(name)
        if info is None:
            names = sorted({s["name"] for s in self.studies()})
            raise KeyError(f"no study named {name!r} in {self.path};{did_you_mean(name, names)} stored: "
                           f"{', '.join(names) or 'none'} "
                           f"(run it first: scalelab study run {name})")
        return info

    def trials_by_level(self, study_id: int) -> dict[str, list[dict]]:
        """The study's trials grouped by sweep level (key: the level as sorted JSON), in stored order."""
        out: dict[str, list[dict]] = {}
        for t in self.trials(study_id):
            out.setdefault(json.dumps(t["level"], sort_keys=True), []).append(t)
        return out

    def trials(self, study_id: int) -> list[dict]:
        """Trials with an outcome (done or diverged), in stored order; failed ones are in :meth:`failed`."""
        rows = self.conn.execute("SELECT id, key, level, seed, status, diverged_step, wall_s, spec, env FROM trials "
                                 "WHERE study_id=? AND status!='failed' ORDER BY id", (study_id,)).fetchall()
        return [dict(id=r[0], key=r[1], level=json.loads(r[2]), seed=r[3], status=r[4], diverged_step=r[5],
                     wall_s=r[6], spec=json.loads(r[7]), env=json.loads(r[8])) for r in rows]

    def failed(self, study_id: int) -> list[dict]:
        """Trials that failed (their worker kept dying, or training raised), with the reason."""
        rows = self.conn.execute("SELECT key, level, seed, reason FROM trials WHERE study_id=? AND status='failed' "
                                 "ORDER BY id", (study_id,)).fetchall()
        return [dict(key=r[0], level=json.loads(r[1]), seed=r[2], reason=r[3]) for r in rows]

    def epochs(self, trial_id: int) -> list[dict]:
        rows = self.conn.execute(f"SELECT epoch, {', '.join(METRICS)} FROM epochs WHERE trial_id=? ORDER BY epoch",
                                 (trial_id,)).fetchall()
        return [dict(zip(("epoch", *METRICS), (r[0], *(float("nan") if v is None else v for v in r[1:]))))
                for r in rows]

    def to_dataframe(self, study: str):
        """The newest study of that name in tidy form, one row per trial × epoch (pandas);
        see :func:`scalelab._export.tidy_rows` for the columns.

        >>> df = scalelab.Store("scalelab.db").to_dataframe("input-scaling")
        >>> df[df.epoch == df.epoch.max()].groupby("input.scale").test_acc.mean()
        """
        from ._export import to_dataframe

        return to_dataframe(self, study)

    def probes(self, trial_id: int) -> list[tuple]:
        return self.conn.execute("SELECT step, probe, name, value FROM probes WHERE trial_id=? ORDER BY step, probe,"
                                 " name", (trial_id,)).fetchall()
