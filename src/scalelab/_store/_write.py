"""Writing a study: its row, the stored trials it reuses, the rows of finished trials."""

from __future__ import annotations

import json
import math
import time

from . import _chunks
from ._schema import EXTRA_METRICS, METRICS


def _num(x):
    """SQLite stores NaN as NULL; inf stays a float (SQLite accepts it)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def save_results(conn, study_id: int, results, env: dict, chunk: int = _chunks.CHUNK) -> None:
    """Rows of finished trials and their links to the study (inside the caller's transaction).
    A trial already stored (same study and key) is linked, not stored twice. A result's kept
    parameters (``train.keep``) go to ``kept`` and the chunks table, ``chunk`` bytes a row."""
    for result in results:
        t = result.trial
        level = json.dumps(t.level, default=str)
        # an outcome replaces an earlier failure of the same trial (a failed one is retried)
        for (old,) in conn.execute("SELECT id FROM trials WHERE study_id=? AND key=? AND status='failed'",
                                   (study_id, t.key)).fetchall():
            conn.execute("DELETE FROM study_trials WHERE trial_id=?", (old,))
            conn.execute("DELETE FROM trials WHERE id=?", (old,))
        cur = conn.execute(
            "INSERT OR IGNORE INTO trials(study_id, key, level, seed, spec, env, status, reason, diverged_step,"
            " wall_s, finished, train_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (study_id, t.key, level, t.seed, json.dumps(t.spec.model_dump(), default=str),
             json.dumps({**(getattr(result, "env", None) or env), **(getattr(result, "path", None) or {})}), result.status, getattr(result, "reason", None),
             result.diverged_step, result.wall_s, time.time(), getattr(result, "train_s", None)))
        if cur.rowcount == 0:
            tid = conn.execute("SELECT id FROM trials WHERE study_id=? AND key=?", (study_id, t.key)).fetchone()[0]
        else:
            tid = cur.lastrowid
            conn.executemany(
                f"INSERT INTO epochs(trial_id, epoch, {', '.join(METRICS)}) VALUES (?,?,{','.join('?' * len(METRICS))})",
                [(tid, e["epoch"], *(_num(e.get(m)) for m in METRICS)) for e in result.epochs])
            extra = [(tid, e["epoch"], EXTRA_METRICS, k, _num(v)) for e in result.epochs for k, v in e.items()
                     if k != "epoch" and k not in METRICS]
            if extra:   # a registered loss's own metrics (test_ade, …): rows of the probes table, step = epoch
                conn.executemany("INSERT OR REPLACE INTO probes(trial_id, step, probe, name, value) VALUES (?,?,?,?,?)",
                                 extra)
            if result.probes:
                conn.executemany("INSERT OR REPLACE INTO probes(trial_id, step, probe, name, value) VALUES (?,?,?,?,?)",
                                 [(tid, s, p, n, _num(v)) for s, p, n, v in result.probes])
            kept = getattr(result, "kept", None)
            if kept is not None:
                manifest = _chunks.write_arrays(conn, f"trial/{tid}", kept["arrays"], chunk)
                manifest["group_size"] = kept.get("group_size", 1)
                conn.execute("INSERT OR REPLACE INTO kept(trial_id, which, epoch, manifest) VALUES (?,?,?,?)",
                             (tid, kept["which"], kept["epoch"], _chunks.dumps(manifest)))
        conn.execute("INSERT OR IGNORE INTO study_trials(study_id, trial_id, level) VALUES (?,?,?)", (study_id, tid, level))


class WriteMixin:
    """The writing half of :class:`Store` (``self.conn``)."""

    def study_id(self, name: str, spec_hash: str, spec: dict) -> int:
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO studies(name, spec_hash, spec, created) VALUES (?,?,?,?)",
                              (name, spec_hash, json.dumps(spec, default=str), time.time()))
        return self.conn.execute("SELECT id FROM studies WHERE name=? AND spec_hash=?", (name, spec_hash)).fetchone()[0]

    def reuse(self, study_id: int, trials) -> set[str]:
        """Link every stored trial that computes the same thing as one of ``trials`` (same
        resolved spec and seed: the same key) to this study; returns the keys linked."""
        linked = set()
        with self.conn:
            for t in trials:
                row = self.conn.execute("SELECT id FROM trials WHERE key=? AND status!='failed' ORDER BY id LIMIT 1",
                                        (t.key,)).fetchone()
                if row is not None:
                    self.conn.execute("INSERT OR IGNORE INTO study_trials(study_id, trial_id, level) VALUES (?,?,?)",
                                      (study_id, row[0], json.dumps(t.level, default=str)))
                    linked.add(t.key)
        return linked

    def save_trial(self, study_id: int, result, env: dict) -> None:
        """All rows of one finished trial, in one transaction; a second save of the same trial is ignored."""
        with self.conn:
            save_results(self.conn, study_id, [result], env, self.chunk_bytes)
