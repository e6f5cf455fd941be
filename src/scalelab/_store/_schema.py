"""Opening a store: what a scalelab store is, its schema version and the migrations to it.

A file is a scalelab store when it has the ``scalelab_meta`` table (or, for stores written
before it existed, exactly the four tables of schema 1). Anything else is refused without
being changed: a reading command opens the file read-only, and a writing command checks
the file read-only before it switches it to WAL or creates a table.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

# the epochs table's metric columns
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
           # regression, in the targets' original units
           "val_mse", "val_r2", "val_corr", "test_mse", "test_r2", "test_corr")
# Metrics beyond these columns (a registered loss's own, e.g. test_ade) are stored as rows of the
# probes table under this probe name, with the epoch as their step, and read back into their epoch.
EXTRA_METRICS = "epoch_metrics"


VERSION = 5

TABLES_V1 = """
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
    status TEXT NOT NULL,
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

# 1 → 2: the metadata table; trials shared between studies (a trial is what it computes:
# a study links every stored trial whose resolved spec it contains); work units that
# processes claim with a lease; per-epoch checkpoints of the unit in progress.
MIGRATION_2 = """
CREATE TABLE IF NOT EXISTS scalelab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS study_trials (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    level TEXT NOT NULL,
    PRIMARY KEY (study_id, trial_id)
);
INSERT OR IGNORE INTO study_trials(study_id, trial_id, level) SELECT study_id, id, level FROM trials;
CREATE INDEX IF NOT EXISTS trials_by_key ON trials(key);
CREATE TABLE IF NOT EXISTS work (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    unit INTEGER NOT NULL,
    trial_keys TEXT NOT NULL,
    trial_index TEXT NOT NULL,
    owner TEXT,
    lease_until REAL,
    claims INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    UNIQUE(study_id, unit)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    work_id INTEGER PRIMARY KEY REFERENCES work(id),
    epoch INTEGER NOT NULL,
    state BLOB NOT NULL,
    saved REAL NOT NULL
);
"""

# 2 → 3: a trial whose worker kept dying (or whose training raised) is stored as failed
# with its reason, and retried by the next run; done in _migrate (stores written by the
# executor that introduced it may have the column already).
# 3 → 4: each trial's training-only seconds (train_s; the steps' own time, without set-up,
# evaluation and hooks); trials stored before keep NULL.
# 4 → 5: trained parameters kept (train.keep = "final" or "best"): one row per trial in
# ``kept`` (which epoch, the manifest of its arrays) and the arrays' bytes as rows of
# ``chunks`` (_chunks.py; no blob over 64 MiB), which also hold checkpoints too big for one blob.
MIGRATION_5 = """
CREATE TABLE IF NOT EXISTS chunks (
    blob TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (blob, idx)
);
CREATE TABLE IF NOT EXISTS kept (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id),
    which TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    manifest TEXT NOT NULL
)
"""
MIGRATIONS = {2: MIGRATION_2, 3: "", 4: "ALTER TABLE trials ADD COLUMN train_s REAL",
              5: MIGRATION_5}   # version → SQL that brings version - 1 to it
METRIC_COLUMNS_V1 = ("val_mse", "val_r2", "val_corr", "test_mse", "test_r2", "test_corr")


class StoreError(Exception):
    """A store that cannot be used as asked; the message names the file and what to do."""


def _tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def version_of(conn, path) -> int:
    """0 for an empty file, the schema version of a scalelab store; StoreError for anything else."""
    tables = _tables(conn)
    if not tables:
        return 0
    if "scalelab_meta" in tables:
        row = conn.execute("SELECT value FROM scalelab_meta WHERE key='schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise StoreError(f"{path}: scalelab_meta has no schema_version; the file is damaged or not a store")
        return int(row[0])
    v1 = {"studies", "trials", "epochs", "probes"}
    trial_cols = {r[1] for r in conn.execute("PRAGMA table_info(trials)")} if "trials" in tables else set()
    if tables == v1 and {"key", "spec", "env", "study_id"} <= trial_cols:
        return 1
    raise StoreError(f"{path} is not a scalelab store (no scalelab_meta table; it has {', '.join(sorted(tables))}); "
                     f"it was left unchanged: pass another --db")


def _open_readonly(path: Path) -> sqlite3.Connection:
    """SQLite's read-only mode; where that cannot open the file (a store left in WAL mode in a
    read-only folder or mount: WAL readers need a -shm file they cannot create there), its
    immutable mode, which reads the file alone. A -wal file with changes not yet folded in
    cannot be read that way: refused, with what to do."""
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"{path} cannot be read here: its latest changes are in {wal.name}, which SQLite cannot "
                         f"open in this read-only folder; copy {path.name} and {wal.name} to a writable folder")
    conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=60)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def _writable(path: Path) -> bool:
    """Can a run write the store (the file, and its folder for the -wal and -shm files)?"""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection after the file was checked; read-only connections never write to the file."""
    if readonly:
        if not path.exists():
            raise StoreError(f"no store at {path}; run a study first (scalelab study run NAME --db {path}) "
                             f"or pass --db")
        if path.is_dir():
            raise StoreError(f"{path} is a folder, not a store file; pass --db FILE")
    elif path.is_dir():
        raise StoreError(f"{path} is a folder, not a store file; pass --db FILE")
    elif not path.parent.exists():
        raise StoreError(f"folder {path.parent} for the store {path.name} does not exist; create it or pass another --db")
    elif not _writable(path):
        raise StoreError(f"{path} cannot be written (read-only file, folder or file system) and a run stores its "
                         f"results there: pass another --db, or copy the store to a writable folder (show, explain, "
                         f"report, trials, ls and export only read it and work here)")
    try:
        if path.exists():   # check before anything writes: a foreign file stays byte-identical
            ro = _open_readonly(path)
            try:
                version = version_of(ro, path)
            finally:
                ro.close()
        else:
            version = 0
        if version > VERSION:
            raise StoreError(f"{path} has store schema {version}, newer than this scalelab's {VERSION}; "
                             f"upgrade scalelab (pip install -U scalelab) to read it")
        if readonly:
            if version == 0:
                raise StoreError(f"{path} is an empty file, not yet a store (no tables); run a study into it first: "
                                 f"scalelab study run NAME --db {path}")
            conn = _open_readonly(path)
            if version == 1:   # an older store, read as it is: a temporary view stands in for the link table
                conn.execute("CREATE TEMP VIEW study_trials AS SELECT study_id, id AS trial_id, level FROM trials")
            return conn
        conn = sqlite3.connect(str(path), timeout=60)
        # 64 KiB pages for a new store (an existing one keeps its size): a per-epoch checkpoint of a
        # p >> n fold fit is a few MB, and on 4 KiB pages its blob is a chain of ~1,000 overflow pages
        # to free and write again each epoch, with a WAL checkpoint (and its fsync) every 4 MB.
        # Measured on run-variance at 5 seeds and 5 epochs: 88.5 s -> 71-77 s (sys 20 -> 11-12 s).
        conn.execute("PRAGMA page_size=65536")
        conn.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs the log at its checkpoints, not at every commit: a commit
        # still survives the process being killed (only a power cut may roll back its last
        # transactions, never corrupt the file). FULL's fsync per commit was ~10 ms of every
        # per-epoch checkpoint and finished unit (a third of a cross-validated study's store time).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, version)
        return conn
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: {e} (is it a scalelab store?)") from None


def _migrate(conn, version: int) -> None:
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        version = version_of(conn, "")   # another process may have migrated meanwhile
        if version == VERSION:
            return
        if version == 0:
            _script(conn, TABLES_V1)
        if version <= 1:
            have = {r[1] for r in conn.execute("PRAGMA table_info(epochs)")}
            for m in METRIC_COLUMNS_V1:   # stores written before the regression metrics existed
                if m not in have:
                    conn.execute(f"ALTER TABLE epochs ADD COLUMN {m} REAL")
        for v in range(max(version, 1) + 1, VERSION + 1):
            _script(conn, MIGRATIONS[v])
        if "reason" not in {r[1] for r in conn.execute("PRAGMA table_info(trials)")}:
            conn.execute("ALTER TABLE trials ADD COLUMN reason TEXT")
        if version == 1:   # keys of schema 1 hashed the study's name and seeds too: rekey by what a trial computes
            from .._spec._trials import trial_key

            rows = conn.execute("SELECT id, spec, seed FROM trials").fetchall()
            conn.executemany("UPDATE trials SET key=? WHERE id=?",
                             [(trial_key(json.loads(spec), seed), tid) for tid, spec, seed in rows])
        conn.execute("INSERT OR REPLACE INTO scalelab_meta(key, value) VALUES ('schema_version', ?)", (str(VERSION),))


def _script(conn, sql: str) -> None:
    for stmt in sql.split(";"):
        if stmt.strip():
            conn.execute(stmt)
