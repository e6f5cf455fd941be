"""Reading a store: studies, their trials (through the study ↔ trial links), epochs, probes."""

from __future__ import annotations

import json

from .._suggest import did_you_mean
from ._schema import EXTRA_METRICS, METRICS



class ReadMixin:
    """The reading half of :class:`Store` (``self.conn``, ``self.path``)."""

    def studies(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT s.id, s.name, s.created, COUNT(t.id) - COALESCE(SUM(t.status='failed'), 0),"
            " SUM(t.status='diverged'), SUM(t.status='failed') FROM studies s "
            "LEFT JOIN study_trials st ON st.study_id = s.id LEFT JOIN trials t ON t.id = st.trial_id "
            "GROUP BY s.id ORDER BY s.id").fetchall()
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
                           f"{', '.join(names) or 'none'} (run it first: scalelab study run {name})")
        return info

    def trials_by_level(self, study_id: int) -> dict[str, list[dict]]:
        """The study's trials grouped by sweep level (key: the level as sorted JSON), in stored order."""
        out: dict[str, list[dict]] = {}
        for t in self.trials(study_id):
            out.setdefault(json.dumps(t["level"], sort_keys=True), []).append(t)
        return out

    def trials(self, study_id: int) -> list[dict]:
        """The study's trials (its own and those it reuses), with the level they have in this study."""
        # train_s: training-only seconds; NULL in a store read as it is from before they were recorded
        has_train = "train_s" in {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}
        rows = self.conn.execute(
            "SELECT t.id, t.key, st.level, t.seed, t.status, t.diverged_step, t.wall_s, t.spec, t.env, "
            f"{'t.train_s' if has_train else 'NULL'} "
            "FROM study_trials st JOIN trials t ON t.id = st.trial_id WHERE st.study_id=? AND t.status!='failed' "
            "ORDER BY t.id",
            (study_id,)).fetchall()
        return [dict(id=r[0], key=r[1], level=json.loads(r[2]), seed=r[3], status=r[4], diverged_step=r[5],
                     wall_s=r[6], spec=json.loads(r[7]), env=json.loads(r[8]), train_s=r[9]) for r in rows]

    def finished_keys(self, study_id: int) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT t.key FROM study_trials st JOIN trials t ON t.id = st.trial_id WHERE st.study_id=? "
            "AND t.status!='failed'", (study_id,))}

    def compile_outcome_env(self, study_id: int) -> dict | None:
        """The stored environment of the study's first finished trial whose wanted compile
        compiled or failed over to eager (``env.step``, ``env.compile_error``); None if none."""
        row = self.conn.execute(
            "SELECT t.env FROM study_trials st JOIN trials t ON t.id = st.trial_id WHERE st.study_id=? AND "
            "t.status!='failed' AND (t.env LIKE '%\"step\": \"compiled\"%' OR t.env LIKE '%\"compile_error\"%') "
            "ORDER BY t.id LIMIT 1", (study_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def failed(self, study_id: int) -> list[dict]:
        """Trials that failed (their worker kept dying, or training raised), with the reason;
        they have no outcome and the next run retries them."""
        if "reason" not in {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}:
            return []   # an older store, read as it is: it never recorded failures
        rows = self.conn.execute("SELECT t.key, st.level, t.seed, t.reason FROM study_trials st JOIN trials t "
                                 "ON t.id = st.trial_id WHERE st.study_id=? AND t.status='failed' ORDER BY t.id",
                                 (study_id,)).fetchall()
        return [dict(key=r[0], level=json.loads(r[1]), seed=r[2], reason=r[3]) for r in rows]

    def to_dataframe(self, study: str):
        """The newest study of that name in tidy form, one row per trial × epoch (pandas);
        see :func:`scalelab._export.tidy_rows` for the columns.

        >>> df = scalelab.Store("scalelab.db").to_dataframe("input-scaling")
        >>> df[df.epoch == df.epoch.max()].groupby("input.scale").test_acc.mean()
        """
        from ._export import to_dataframe

        return to_dataframe(self, study)

    def epochs(self, trial_id: int) -> list[dict]:
        rows = self.conn.execute(f"SELECT epoch, {', '.join(METRICS)} FROM epochs WHERE trial_id=? ORDER BY epoch",
                                 (trial_id,)).fetchall()
        out = [dict(zip(("epoch", *METRICS), (r[0], *(float("nan") if v is None else v for v in r[1:]))))
               for r in rows]
        by_epoch = {e["epoch"]: e for e in out}
        for epoch, name, value in self.conn.execute("SELECT step, name, value FROM probes WHERE trial_id=? AND probe=?",
                                                    (trial_id, EXTRA_METRICS)):
            if epoch in by_epoch:
                by_epoch[epoch][name] = float("nan") if value is None else value
        return out

    def probes(self, trial_id: int) -> list[tuple]:
        return self.conn.execute("SELECT step, probe, name, value FROM probes WHERE trial_id=? AND probe!=? ORDER BY "
                                 "step, probe, name", (trial_id, EXTRA_METRICS)).fetchall()

    def kept(self, trial_id: int) -> dict | None:
        """A trial's kept parameters (``train.keep``): which ("final" or "best"), the epoch and
        the arrays (``param/…``, ``buffer/…``, ``transform/…``); None when none were kept."""
        from ._chunks import read_arrays

        if "kept" not in {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}:
            return None   # a store from before parameters could be kept
        row = self.conn.execute("SELECT which, epoch, manifest FROM kept WHERE trial_id=?", (trial_id,)).fetchone()
        if row is None:
            return None
        manifest = json.loads(row[2])
        return dict(which=row[0], epoch=row[1], arrays=read_arrays(self.conn, manifest),
                    group_size=manifest.get("group_size", 1))

    def checkpoint_bytes(self) -> list[tuple[int, int, int]]:
        """(work unit, epoch, compressed bytes) of every checkpoint held in the store."""
        return self.conn.execute("SELECT work_id, epoch, length(state) FROM checkpoints ORDER BY work_id").fetchall()
