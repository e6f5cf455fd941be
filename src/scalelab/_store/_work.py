"""Work shared between processes, as Optuna's RDB storage does it: a study's groups of
trials are *work units* in the store; a process claims one in a transaction with a lease,
a heartbeat thread renews the lease while it trains, and each finished epoch is a
checkpoint of the unit. A unit whose lease ran out, or whose owner on this host is no
longer alive (kill -9), is claimed by the next process and resumed from its checkpoint.

The API an executor needs (the local one, a Ray driver): :meth:`WorkMixin.plan_units`,
:meth:`claim`, :meth:`save_checkpoint`, :meth:`load_checkpoint`, :meth:`finish_unit`,
:meth:`units_left`, and :class:`Heartbeat`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass

from . import _chunks
from ._checkpoint_blob import decode, encode
from ._write import save_results

CHUNKED = b"scalelab-chunked-state\n"   # a checkpoint whose arrays are in the chunks table


class LeaseLost(Exception):
    """Another process took this unit over (our lease ran out); stop training it."""


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs."""
    host, pid, _ = owner.rsplit(":", 2)
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


@dataclass
class Unit:
    id: int
    trial_keys: list[str]
    trial_index: list[int]   # positions in the study's trials (scalelab.iter_trials), to rebuild them
    epoch: int          # epochs held by its checkpoint (0: starts from scratch)
    takeover: bool      # claimed from another owner


class WorkMixin:
    """The sharing half of :class:`Store` (``self.conn``, ``self.path``, ``self.lease_s``)."""

    def plan_units(self, study_id: int, todo: list[str], groups: "callable") -> int:
        """The study's work units, planned once: units not done keep their composition (so a
        rerun or another process resumes the same groups); ``groups(keys)`` plans only the
        ``todo`` keys that no such unit covers and no process stored meanwhile, as lists of
        (position in the study's trials, key). Returns the number of units not done."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            rows = self.conn.execute("SELECT trial_keys FROM work WHERE study_id=? AND done=0", (study_id,)).fetchall()
            covered = {k for (keys,) in rows for k in json.loads(keys)}
            covered |= self.finished_keys(study_id)   # stored meanwhile by another process
            missing = {k for k in todo if k not in covered}
            if missing:
                n = self.conn.execute("SELECT COALESCE(MAX(unit) + 1, 0) FROM work WHERE study_id=?",
                                      (study_id,)).fetchone()[0]
                self.conn.executemany(
                    "INSERT INTO work(study_id, unit, trial_keys, trial_index) VALUES (?,?,?,?)",
                    [(study_id, n + i, json.dumps([k for _, k in g]), json.dumps([j for j, _ in g]))
                     for i, g in enumerate(groups(missing))])
        return self.units_left(study_id)

    def units_left(self, study_id: int, keys: "set[str] | None" = None) -> int:
        """Units not done; with ``keys``, only those of these trials (one stage of a study)."""
        if keys is None:
            return self.conn.execute("SELECT COUNT(*) FROM work WHERE study_id=? AND done=0", (study_id,)).fetchone()[0]
        rows = self.conn.execute("SELECT trial_keys FROM work WHERE study_id=? AND done=0", (study_id,)).fetchall()
        return sum(set(json.loads(k)) <= keys for (k,) in rows)

    def claim(self, study_id: int, owner: str, keys: "set[str] | None" = None) -> Unit | None:
        """The next unit nobody holds (free, lease expired or owner dead), now leased to ``owner``;
        with ``keys``, only a unit of these trials: a process still in one stage of a study never
        takes a unit of the next, which a faster process may have planned already."""
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            rows = self.conn.execute("SELECT id, trial_keys, trial_index, owner, lease_until FROM work "
                                     "WHERE study_id=? AND done=0 ORDER BY unit", (study_id,)).fetchall()
            for wid, keys_json, index, held_by, until in rows:
                if keys is not None and not set(json.loads(keys_json)) <= keys:
                    continue
                if held_by is None or until < now or _owner_dead(held_by):
                    self.conn.execute("UPDATE work SET owner=?, lease_until=?, claims=claims+1 WHERE id=?",
                                      (owner, now + self.lease_s, wid))
                    ck = self.conn.execute("SELECT epoch FROM checkpoints WHERE work_id=?", (wid,)).fetchone()
                    return Unit(wid, json.loads(keys_json), json.loads(index), ck[0] if ck else 0, held_by is not None)
        return None

    def _check_owner(self, work_id: int, owner: str) -> None:
        row = self.conn.execute("SELECT owner, done FROM work WHERE id=?", (work_id,)).fetchone()
        if row is None or row[0] != owner or row[1]:
            raise LeaseLost(f"work unit {work_id} of {self.path} was taken over by {row[0] if row else 'nobody'}")

    def save_checkpoint(self, work_id: int, owner: str, epoch: int, state: "dict | bytes") -> None:
        """One group-epoch in one transaction: the unit's state after ``epoch`` epochs
        (metrics and probe records so far included); the lease is renewed with it. ``state``
        (:func:`scalelab.engine.capture`) is one ``.npz`` blob while its arrays stay under
        one chunk, else its arrays go to the chunks table (a 2 GB embedding's Adam state)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self._check_owner(work_id, owner)
            blob = f"checkpoint/{work_id}"
            if isinstance(state, dict) and sum(a.nbytes for a in state["tensors"].values()) > self.chunk_bytes:
                manifest = _chunks.write_arrays(self.conn, blob, state["tensors"], self.chunk_bytes)
                data = CHUNKED + json.dumps(dict(meta=state["meta"], arrays=manifest)).encode()
            else:
                _chunks.delete_blob(self.conn, blob)
                data = encode(state) if isinstance(state, dict) else state
            self.conn.execute("INSERT OR REPLACE INTO checkpoints(work_id, epoch, state, saved) VALUES (?,?,?,?)",
                              (work_id, epoch, sqlite3.Binary(data), time.time()))
            self.conn.execute("UPDATE work SET lease_until=? WHERE id=?", (time.time() + self.lease_s, work_id))

    def load_checkpoint(self, work_id: int) -> dict | None:
        """The unit's last checkpoint as a state (:func:`._checkpoint_blob.decode`), or None."""
        row = self.conn.execute("SELECT state FROM checkpoints WHERE work_id=?", (work_id,)).fetchone()
        if row is None:
            return None
        data = bytes(row[0])
        if data.startswith(CHUNKED):
            head = json.loads(data[len(CHUNKED):].decode())
            return dict(meta=head["meta"], tensors=_chunks.read_arrays(self.conn, head["arrays"]))
        return decode(data)

    def finish_unit(self, study_id: int, work_id: int, owner: str, results, env: dict,
                    keep_checkpoint: bool = False) -> None:
        """Every trial of the unit, its link to the study and the unit's end, in one transaction;
        the checkpoint is dropped unless ``keep_checkpoint``."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self._check_owner(work_id, owner)
            save_results(self.conn, study_id, results, env, self.chunk_bytes)
            self.conn.execute("UPDATE work SET done=1, owner=NULL WHERE id=?", (work_id,))
            if not keep_checkpoint:
                self.conn.execute("DELETE FROM checkpoints WHERE work_id=?", (work_id,))
                _chunks.delete_blob(self.conn, f"checkpoint/{work_id}")

    def release(self, work_id: int, owner: str) -> None:
        """Give a unit back (an interrupt): its checkpoint stays for whoever claims it next."""
        with self.conn:
            self.conn.execute("UPDATE work SET owner=NULL, lease_until=NULL WHERE id=? AND owner=?", (work_id, owner))


class Heartbeat:
    """Renews ``owner``'s lease on a unit from a thread (its own connection) while training runs."""

    def __init__(self, path, work_id: int, owner: str, lease_s: float):
        self.path, self.work_id, self.owner, self.lease_s = path, work_id, owner, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        conn = sqlite3.connect(str(self.path), timeout=60)
        try:
            while not self._stop.wait(self.lease_s / 3):
                with conn:
                    conn.execute("UPDATE work SET lease_until=? WHERE id=? AND owner=?",
                                 (time.time() + self.lease_s, self.work_id, self.owner))
        finally:
            conn.close()
