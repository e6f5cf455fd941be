"""Failed trials in the store: kept with their reason, out of every reading, retried by the
next run, and replaced by the outcome; stores from before the status existed still open."""

import sqlite3

from scalelab import Store, expand, run_study, summarize
from scalelab._spec import load_spec
from scalelab.engine import TrialResult

SPEC = dict(name="tiny-iris", seeds=2, data=dict(dataset="iris"), loss=dict(name="crossentropy"),
            model=dict(hidden=[4]), train=dict(epochs=2))


def test_failed_trial_is_kept_apart_and_retried_by_the_next_run(tmp_path):
    store = Store(tmp_path / "s.db")
    trials = expand(load_spec(SPEC))
    sid = store.study_id(SPEC["name"], "h", {})
    store.save_trial(sid, TrialResult(trials[0], "failed", None, [], 0.0, reason="WorkerCrashedError x"), {})
    assert store.finished_keys(sid) == set()
    assert store.trials(sid) == []
    assert store.failed(sid) == [dict(key=trials[0].key, level=trials[0].level, seed=trials[0].seed,
                                      reason="WorkerCrashedError x")]
    assert store.studies()[0]["n_failed"] == 1 and store.studies()[0]["n_trials"] == 0


def test_run_replaces_a_failure_with_the_outcome(tmp_path):
    db = tmp_path / "s.db"
    sid = run_study(SPEC, db)
    store = Store(db)
    first = store.trials(sid)[0]
    # the same trial recorded as failed (as a lost worker would leave it), then the study run again
    with store.conn:
        store.conn.execute("DELETE FROM epochs WHERE trial_id=?", (first["id"],))
        store.conn.execute("UPDATE trials SET status='failed', reason='lost' WHERE id=?", (first["id"],))
    assert first["key"] not in store.finished_keys(sid)
    assert run_study(SPEC, db) == sid
    rows = store.conn.execute("SELECT key, status, reason FROM trials ORDER BY key").fetchall()
    assert len(rows) == 2 and {r[1] for r in rows} == {"done"} and {r[2] for r in rows} == {None}
    assert len(store.epochs(store.trials(sid)[-1]["id"])) == 2
    assert len(summarize(store, SPEC["name"])) == 1


def test_store_from_before_failed_trials_gains_the_reason_column(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    from scalelab._store._schema import TABLES_V1

    conn.executescript(TABLES_V1)   # a schema-1 store: its trials table has no reason column
    conn.commit()
    conn.close()
    store = Store(db)
    assert "reason" in {r[1] for r in store.conn.execute("PRAGMA table_info(trials)")}
