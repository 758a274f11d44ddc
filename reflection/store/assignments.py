"""Assignments: which reviewers each sample of a dataset goes to, and what they decided.

`assignments` holds one row per (dataset, reviewer, sample): `active` while it is the
reviewer's to decide (or decided), `withdrawn` once reassigned to someone else. Its key is
its only index, so a reviewer's queue is one range of it, and per-sample questions are asked
per reviewer (a handful of seeks). A dataset with any assignment is *assigned*: each
reviewer's queue holds their active assignments only, and its samples replay per reviewer
(store/tracks.py). Each reviewer's decision in force is in `reviewer_state`; the choice of who
gets what is reflection.team.assign's, not the store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .base import json_list, now
from .reviews import ReviewStore

REPLAY_CHUNK = 10_000  # reviewed samples read at a time when a dataset is first assigned

ACTIVE, WITHDRAWN = "active", "withdrawn"


# A ReviewStore: a dataset's first assignments replay its reviews per reviewer.
class AssignmentStore(ReviewStore):
    def assigned_reviewers(self, dataset_id: int) -> list[str]:
        """Everyone with an assignment in the dataset, active or withdrawn, by name."""
        # A skip-scan over the key: one seek per reviewer, not a read of every row.
        rows = self.conn.execute(
            "WITH RECURSIVE r(name) AS (SELECT min(reviewer) FROM assignments"
            " WHERE dataset_id = ? UNION ALL SELECT (SELECT min(reviewer) FROM assignments"
            " WHERE dataset_id = ? AND reviewer > r.name) FROM r WHERE r.name IS NOT NULL)"
            " SELECT name FROM r WHERE name IS NOT NULL",
            [dataset_id, dataset_id],
        )
        return [row[0] for row in rows]

    def unassigned_sample_ids(self, dataset_id: int, after: int, limit: int) -> list[int]:
        """The next `limit` ids (in id order, above `after`) of samples nobody is assigned."""
        reviewers = self.assigned_reviewers(dataset_id)
        found: list[int] = []
        while len(found) < limit:
            # `+dataset_id`: walk the id range, not the dataset's whole index, for each chunk.
            ids = [
                row[0]
                for row in self.conn.execute(
                    "SELECT id FROM samples WHERE +dataset_id = ? AND id > ? ORDER BY id LIMIT ?",
                    [dataset_id, after, limit - len(found)],
                )
            ]
            if not ids:
                break
            taken = self._assigned_between(dataset_id, reviewers, ids[0], ids[-1])
            # (a sample with only withdrawn rows still counts as assigned: it was dealt)
            found += [i for i in ids if i not in taken]
            after = ids[-1]
        return found

    def _assigned_between(
        self, dataset_id: int, reviewers: Sequence[str], low: int, high: int
    ) -> set[int]:
        if not reviewers:
            return set()
        rows = self.conn.execute(
            "SELECT sample_id FROM assignments WHERE dataset_id = ?"
            " AND reviewer IN (SELECT value FROM json_each(?)) AND sample_id BETWEEN ? AND ?",
            [dataset_id, json_list(reviewers), low, high],
        )
        return {row[0] for row in rows}

    def assignment_loads(self, dataset_id: int) -> dict[str, int]:
        """Active assignments per reviewer."""
        rows = self.conn.execute(
            "SELECT reviewer, count(*) FROM assignments WHERE dataset_id = ? AND state = ?"
            " GROUP BY reviewer",
            [dataset_id, ACTIVE],
        )
        return dict(rows.fetchall())

    def add_assignments(self, dataset_id: int, pairs: list[tuple[int, str]]) -> int:
        """Assign each (sample id, reviewer) pair, in one transaction; returns how many.

        The dataset's first assignments make it assigned: its reviewed samples then replay
        their reviews per reviewer.
        """
        if not pairs:
            return 0
        at = now()
        with self.transaction():
            first = not self.dataset_assigned(dataset_id)
            self.conn.executemany(
                "INSERT INTO assignments (dataset_id, reviewer, sample_id, state, assigned_at)"
                # Our own int and timestamp inline: two parameters a row instead of five.
                f" VALUES ({int(dataset_id)}, ?, ?, '{ACTIVE}', '{at}')",
                ((reviewer, sample_id) for sample_id, reviewer in pairs),
            )
            if first:
                for sample_id in self._reviewed_sample_ids(dataset_id):
                    self.replay_sample(sample_id, dataset_id)
        return len(pairs)

    def _reviewed_sample_ids(self, dataset_id: int) -> Iterator[int]:
        """The dataset's reviewed samples in id order, REPLAY_CHUNK at a time (all at once
        they took `assign` to 745 MB at 10M samples, 7.1M of them reviewed)."""
        after = 0
        while ids := [
            row[0]
            for row in self.conn.execute(
                # From the reviews' index onwards, each checked for its dataset: a join
                # started from the dataset's samples read all of them for every chunk.
                "SELECT DISTINCT r.sample_id FROM reviews r WHERE r.sample_id > ? AND EXISTS"
                " (SELECT 1 FROM samples s WHERE s.id = r.sample_id AND s.dataset_id = ?)"
                " ORDER BY r.sample_id LIMIT ?",
                [after, dataset_id, REPLAY_CHUNK],
            )
        ]:
            yield from ids
            after = ids[-1]

    def assignees(
        self, dataset_id: int, sample_ids: Iterable[int], reviewers: Sequence[str]
    ) -> dict[int, set[str]]:
        """Which of `reviewers` each sample is actively assigned to (samples with none left out)."""
        found: dict[int, set[str]] = {}
        rows = self.conn.execute(
            "SELECT sample_id, reviewer FROM assignments WHERE dataset_id = ?"
            " AND reviewer IN (SELECT value FROM json_each(?))"
            " AND sample_id IN (SELECT value FROM json_each(?)) AND state = ?",
            [dataset_id, json_list(reviewers), json_list(sample_ids), ACTIVE],
        )
        for sample_id, reviewer in rows:
            found.setdefault(sample_id, set()).add(reviewer)
        return found

    def is_assigned(self, dataset_id: int, sample_id: int, reviewer: str) -> bool:
        """Whether `reviewer` is actively assigned `sample_id`."""
        found = self.conn.execute(
            "SELECT 1 FROM assignments WHERE dataset_id = ? AND reviewer = ? AND sample_id = ?"
            " AND state = ?",
            [dataset_id, reviewer, sample_id, ACTIVE],
        ).fetchone()
        return found is not None

    def open_assignments(self, dataset_id: int, reviewer: str) -> list[int]:
        """Ids of the reviewer's active assignments they have not decided (skips stay open)."""
        rows = self.conn.execute(
            "SELECT a.sample_id FROM assignments a WHERE a.dataset_id = ? AND a.reviewer = ?"
            " AND a.state = ? AND NOT EXISTS (SELECT 1 FROM reviewer_state r"
            " WHERE r.sample_id = a.sample_id AND r.kind = '' AND r.reviewer = a.reviewer"
            " AND r.status != 'skipped') ORDER BY a.sample_id",
            [dataset_id, reviewer, ACTIVE],
        )
        return [row[0] for row in rows]

    def move_assignments(self, dataset_id: int, moves: list[tuple[int, str, str]]) -> int:
        """Withdraw each (sample, from) assignment and give the sample to `to`, as one."""
        at = now()
        with self.transaction():
            for sample_id, old, new in moves:
                self.conn.execute(
                    "UPDATE assignments SET state = ?"
                    " WHERE dataset_id = ? AND reviewer = ? AND sample_id = ?",
                    [WITHDRAWN, dataset_id, old, sample_id],
                )
                self.conn.execute(
                    "INSERT INTO assignments (dataset_id, reviewer, sample_id, state, assigned_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (dataset_id, reviewer, sample_id)"
                    " DO UPDATE SET state = excluded.state, assigned_at = excluded.assigned_at",
                    [dataset_id, new, sample_id, ACTIVE, at],
                )
        return len(moves)

    def reviewer_progress(
        self, dataset_id: int, reviewer: str | None = None
    ) -> list[dict[str, Any]]:
        """Per reviewer: active assignments, how many they decided, skipped, and left open."""
        where, params = "a.dataset_id = ? AND a.state = ?", [dataset_id, ACTIVE]
        if reviewer is not None:
            where += " AND a.reviewer = ?"
            params.append(reviewer)
        rows = self.query(
            "SELECT a.reviewer, count(*) AS assigned,"
            " count(r.status) - count(CASE WHEN r.status = 'skipped' THEN 1 END) AS decided,"
            " count(CASE WHEN r.status = 'skipped' THEN 1 END) AS skipped"
            " FROM assignments a LEFT JOIN reviewer_state r ON r.sample_id = a.sample_id"
            f" AND r.kind = '' AND r.reviewer = a.reviewer WHERE {where}"
            " GROUP BY a.reviewer ORDER BY a.reviewer",
            params,
        )
        for row in rows:
            row["open"] = row["assigned"] - row["decided"]
        return rows

    def track_rows(
        self, dataset_id: int, sample_ids: Iterable[int] | None = None, *, shared: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every decision in force on every track of the dataset's samples (or of `sample_ids`),
        streamed by sample, then time. `shared`: only of samples on two reviewers' tracks or
        more, those agreement is about (at 100,000 decided samples of one reviewer each, the
        Dashboard's agreement read them all in Python: 0.6 s).

        Rows: sample_id, kind ("" or "adjudication"), reviewer, status, candidate_id (0 for the
        original), annotator, decided_at, review_id, and edit_text (an edit's instruction, input
        and output joined, else None: two edits agree when it is the same).
        """
        sql = (
            "SELECT r.sample_id, r.kind, r.reviewer, r.status, r.candidate_id, r.annotator,"
            " r.decided_at, r.review_id, CASE WHEN r.status = 'edited' THEN c.instruction"
            " || char(0) || c.input || char(0) || c.output END AS edit_text"
            " FROM reviewer_state r LEFT JOIN candidates c ON c.id = r.candidate_id"
            " WHERE r.dataset_id = ?"
        )
        params: list[Any] = [dataset_id]
        if sample_ids is not None:
            sql += " AND r.sample_id IN (SELECT value FROM json_each(?))"
            params.append(json_list(sample_ids))
        if shared:
            sql += (
                " AND r.sample_id IN (SELECT sample_id FROM reviewer_state WHERE dataset_id = ?"
                " AND kind = '' GROUP BY sample_id HAVING count(*) >= 2)"
            )
            params.append(dataset_id)
        cursor = self.conn.execute(f"{sql} ORDER BY r.sample_id, r.review_id", params)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def disputed_sample_ids(
        self, dataset_id: int, *, adjudicated: bool = False, limit: int | None = None
    ) -> list[int]:
        """Samples whose reviewers' decisions in force disagree, in source order.

        Skips are no vote; two edits agree when their text is the same. Samples with an
        adjudication in force are left out unless `adjudicated`.
        """
        sql = (
            "SELECT s.id FROM samples s JOIN (SELECT r.sample_id FROM reviewer_state r"
            " LEFT JOIN candidates c ON c.id = r.candidate_id AND r.status = 'edited'"
            " WHERE r.dataset_id = ? AND r.kind = '' AND r.status != 'skipped'"
            " GROUP BY r.sample_id HAVING count(DISTINCT CASE WHEN r.status = 'edited'"
            " THEN 'e' || char(0) || c.instruction || char(0) || c.input || char(0) || c.output"
            " WHEN r.status = 'rejected' THEN 'rejected'"
            " ELSE r.status || ':' || r.candidate_id END) > 1) d ON d.sample_id = s.id"
        )
        params: list[Any] = [dataset_id]
        if not adjudicated:
            sql += (
                " WHERE s.id NOT IN (SELECT sample_id FROM reviewer_state"
                " WHERE dataset_id = ? AND kind = 'adjudication')"
            )
            params.append(dataset_id)
        sql += " ORDER BY s.position, s.id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [row[0] for row in self.conn.execute(sql, params)]
