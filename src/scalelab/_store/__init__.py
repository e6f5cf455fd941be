"""SQLite store: studies, trials with their resolved spec and environment, per-epoch
metrics and probe records, work units shared between processes and their checkpoints.

* ``_schema``: what a store is, its version and migrations, opening it (read-only or not);
* ``_read``: studies, trials, epochs, probes;
* ``_write``: studies, reused trials, finished trials;
* ``_work``: claiming units with a lease, heartbeats, per-epoch checkpoints.

While a process writes, the file is in WAL mode (readers and writers of several processes
do not block each other); the last writer to close turns it back to a plain file.
Checkpoints live in the store file itself (table ``checkpoints``, one ``.npz`` per unit in
progress; arrays over 64 MiB in rows of ``chunks``), and so do the parameters a study keeps
(``train.keep``; table ``kept``, read back by :func:`scalelab.load`): a store stays one
file to copy, and no blob exceeds SQLite's limit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._chunks import CHUNK
from ._read import ReadMixin
from ._schema import METRICS, VERSION, StoreError, connect
from ._work import Heartbeat, LeaseLost, Unit, WorkMixin, new_owner
from ._write import WriteMixin


class Store(ReadMixin, WriteMixin, WorkMixin):
    """A scalelab store file. ``readonly``: opened with SQLite's read-only mode, never changed
    (the reading commands); otherwise created or migrated to :data:`VERSION` as needed."""

    def __init__(self, path: str | Path = "scalelab.db", readonly: bool = False, lease_s: float = 60.0,
                 chunk_bytes: int = CHUNK):
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes   # the largest blob written (_chunks.py); smaller only to test

        self.readonly = readonly
        self.lease_s = lease_s
        self.conn = connect(self.path, readonly)

    def close(self):
        if not self.readonly:
            # The last writer out leaves a plain rollback-journal file: read-only openers then
            # create no -wal/-shm files beside it. With other connections open this fails at once.
            try:
                self.conn.execute("PRAGMA busy_timeout=0")
                self.conn.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:
                pass
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def store_error(path, e: sqlite3.Error) -> StoreError:
    """A SQLite error as one line that names the file."""
    return StoreError(f"{path}: {e}")


__all__ = ["METRICS", "VERSION", "Heartbeat", "LeaseLost", "Store", "StoreError", "Unit", "new_owner",
           "store_error"]
