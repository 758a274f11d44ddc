"""Reading the counts the store keeps as it writes (migration m018, `schema_tallies`).

A count is its `tallies` row plus any `tally_deltas` rows (PostgreSQL's triggers append
those; SQLite's add to `tallies` directly, so there are none). Past FOLD_AT delta rows a
reader folds them into `tallies` in one short transaction, which one process at a time does
(an advisory lock; a reader that does not get it just reads on). So a read costs a few index
rows however large the dataset, and writers never wait on one another's counts.
"""

from __future__ import annotations

from typing import Any

from ..records import UNDECIDED
from .base import StoreBase
from .connection import POSTGRESQL
from .schema_acceptance import ACCEPTED, DECIDED_STATUSES, OFFERED, ORIGINAL
from .schema_acceptance import COUNT_SQL as ACCEPTANCE_COUNTS
from .schema_flags import FLAG_TALLY, KEPT_FLAGS, WITH_CANDIDATES
from .schema_tallies import COUNTED, SAMPLES, SCORES
from .tracks import STATUS_OF_DECISION

FOLD_AT = 500
# PostgreSQL advisory lock key for folding deltas (MIGRATION_LOCK's neighbour).
FOLD_LOCK = 7_140_212_311

# One dataset's tallies and delta rows, as (name, n, is a delta) rows.
_ROWS = (
    "SELECT name, n, 0 AS delta FROM tallies WHERE dataset_id = ?"
    " UNION ALL SELECT name, n, 1 FROM tally_deltas WHERE dataset_id = ?"
)
_ALL_ROWS = "SELECT name, n, 0 AS delta FROM tallies UNION ALL SELECT name, n, 1 FROM tally_deltas"
# A dataset's sample count as a scalar subquery, for `datasets()` (column d.id).
SAMPLE_COUNT_SQL = (
    "coalesce((SELECT sum(t.n) FROM (SELECT n FROM tallies WHERE dataset_id = d.id"
    f" AND name = '{SAMPLES}' UNION ALL SELECT n FROM tally_deltas WHERE dataset_id = d.id"
    f" AND name = '{SAMPLES}') AS t), 0)"
)


class TallyStore(StoreBase):
    def tallies(self, dataset_id: int | None = None) -> dict[str, int]:
        """{name: count} for one dataset (all datasets with None): "samples", "candidates",
        "scores" (with a value), and each review status that some sample has in force."""
        source, params = (_ROWS, [dataset_id, dataset_id]) if dataset_id else (_ALL_ROWS, [])
        rows = self.conn.execute(
            f"SELECT name, CAST(sum(n) AS BIGINT), CAST(sum(delta) AS BIGINT) FROM ({source})"
            " AS t GROUP BY name",
            params,
        ).fetchall()
        if sum(row[2] for row in rows) > FOLD_AT:
            self.fold_tallies()
        return {str(name): int(n) for name, n, _ in rows}

    def status_counts(self, dataset_id: int | None = None) -> dict[str, int]:
        """How many samples are undecided, accepted, edited, rejected or skipped: from the
        counts the store keeps as it writes (m018), not a count of a million rows."""
        kept = self.tallies(dataset_id)
        counts = {UNDECIDED: 0, **{status: 0 for status in STATUS_OF_DECISION.values()}}
        for status in STATUS_OF_DECISION.values():
            counts[status] = kept.get(status, 0)
        counts[UNDECIDED] = kept.get(SAMPLES, 0) - sum(counts.values())
        return counts

    def flag_counts(self, dataset_id: int) -> dict[str, int]:
        """Samples carrying each derived review flag (`misaligned`, `drift`, `no_candidate`,
        the content flags, ...): from the counts the store keeps as it writes (m020)."""
        kept = self.tallies(dataset_id)
        counts = {
            flag.name.removeprefix(FLAG_TALLY): kept.get(flag.name, 0)
            for flag in KEPT_FLAGS
            if flag.name.startswith(FLAG_TALLY)
        }
        counts["no_candidate"] = kept.get(SAMPLES, 0) - kept.get(WITH_CANDIDATES, 0)
        return counts

    def acceptance_by_kind(self, dataset_id: int) -> list[dict[str, Any]]:
        """Per version kind, of the dataset's decided samples (accepted, edited or rejected):
        how many had one to offer ("original": all of them) and how many took it; the kinds
        no decided sample was offered left out. From the counts the store keeps as it writes
        (m025), not a join of every decided sample with its candidates."""
        kept = self.tallies(dataset_id)
        rows = [
            {
                "kind": ORIGINAL,
                "offered": sum(kept.get(status, 0) for status in DECIDED_STATUSES),
                "accepted": kept.get(ACCEPTED + ORIGINAL, 0),
            }
        ]
        for name in sorted(kept):
            kind = name.removeprefix(OFFERED)
            if name.startswith(OFFERED) and kept[name] > 0:
                rows.append(
                    {"kind": kind, "offered": kept[name], "accepted": kept.get(ACCEPTED + kind, 0)}
                )
        return rows

    def count_scores(self, dataset_id: int | None = None) -> int:
        """Scores with a value, of one dataset's versions (all datasets with None)."""
        return self.tallies(dataset_id).get(SCORES, 0)

    def fold_tallies(self) -> None:
        """Add the delta rows into `tallies` and delete them (PostgreSQL; SQLite has none).

        Not inside a caller's transaction: the fold is its own, short one."""
        if self.dialect != POSTGRESQL or self.conn.in_transaction:
            return
        with self.transaction():
            if not self.scalar("SELECT pg_try_advisory_xact_lock(?)", [FOLD_LOCK]):
                return  # another process is folding them right now
            self.conn.execute(
                "WITH moved AS (DELETE FROM tally_deltas RETURNING dataset_id, name, n)"
                " INSERT INTO tallies (dataset_id, name, n)"
                " SELECT dataset_id, name, sum(n) FROM moved GROUP BY dataset_id, name"
                " ON CONFLICT (dataset_id, name) DO UPDATE SET n = tallies.n + excluded.n"
            )

    def tally_check(self) -> list[dict[str, Any]]:
        """Every tally that differs from a count of the rows it stands for (none, unless the
        triggers were bypassed, or two PostgreSQL writers raised one flag on one sample at
        once): [{dataset_id, name, kept, counted}]."""
        counted: dict[tuple[int, str], int] = {}
        for table, name, dataset, join, where in COUNTED:
            for dataset_id, key, n in self.conn.execute(
                f"SELECT {dataset}, {name}, count(*) FROM {table} r{join}{where} GROUP BY 1, 2"
            ):
                counted[(dataset_id, key)] = n
        for flag in KEPT_FLAGS:
            for dataset_id, key, n in self.conn.execute(flag.count_sql(self.dialect)):
                counted[(dataset_id, str(key))] = n
        for sql in ACCEPTANCE_COUNTS:
            for dataset_id, key, n in self.conn.execute(sql):
                counted[(dataset_id, str(key))] = n
        kept: dict[tuple[int, str], int] = {}
        for dataset_id, name, n in self.conn.execute(
            "SELECT dataset_id, name, CAST(sum(n) AS BIGINT) FROM (SELECT dataset_id, name, n"
            " FROM tallies UNION ALL SELECT dataset_id, name, n FROM tally_deltas) AS t"
            " GROUP BY dataset_id, name"
        ):
            kept[(dataset_id, name)] = int(n)
        return [
            {"dataset_id": key[0], "name": key[1], "kept": kept.get(key, 0),
             "counted": counted.get(key, 0)}
            for key in sorted(set(counted) | set(kept))
            if kept.get(key, 0) != counted.get(key, 0)
        ]  # fmt: skip

    def tally_repair(self) -> list[dict[str, Any]]:
        """Recount every kept count and set those that differ (`tally_check`) to the recount;
        returns what it corrected. One transaction: on SQLite it holds the write lock; on
        PostgreSQL it reads one snapshot (REPEATABLE READ) and adds the difference as a delta,
        so writes committed meanwhile keep their own deltas on top."""
        with self.transaction():
            if self.dialect == POSTGRESQL:
                self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return self.set_tallies_to_counts()

    def set_tallies_to_counts(self) -> list[dict[str, Any]]:
        """`tally_repair` inside the caller's transaction (a store copied with its triggers
        off counts everything this way once the rows are in)."""
        wrong = self.tally_check()
        for row in wrong:
            if self.dialect == POSTGRESQL:
                self.conn.execute(
                    "INSERT INTO tally_deltas (dataset_id, name, n) VALUES (?, ?, ?)",
                    [row["dataset_id"], row["name"], row["counted"] - row["kept"]],
                )
            else:
                self.conn.execute(
                    "INSERT INTO tallies (dataset_id, name, n) VALUES (?, ?, ?)"
                    " ON CONFLICT (dataset_id, name) DO UPDATE SET n = excluded.n",
                    [row["dataset_id"], row["name"], row["counted"]],
                )
        return wrong
