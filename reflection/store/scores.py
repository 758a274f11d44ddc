"""Scores and suggestions: numbers about versions, and what selection rules propose."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..records import Score, Suggestion
from .base import (
    StoreBase,
    dumps,
    from_db_candidate,
    json_list,
    loads,
    now,
    to_db_candidate,
)
from .connection import POSTGRESQL, typed
from .schema import SCORE_CHANGES_SELECT

_STAGED = "temp.put_scores"
_SCORE_COLUMNS = (
    "sample_id", "candidate_id", "metric", "scorer", "value", "detail", "run_id", "created_at"
)  # fmt: skip


def _score(row: dict[str, Any]) -> Score:
    row = dict(row)
    row["detail"] = loads(row["detail"], {})
    row["candidate_id"] = from_db_candidate(row["candidate_id"])
    return Score(**row)


def update_scores_from(source: str) -> str:
    """UPDATE of the scores whose key is among the rows of `source` (a table, or a SELECT in
    parentheses), with their value, detail, run and time."""
    return (
        "UPDATE scores SET value = st.value, detail = st.detail, run_id = st.run_id,"
        f" created_at = st.created_at FROM {source} AS st WHERE scores.sample_id = st.sample_id"
        " AND scores.candidate_id = st.candidate_id AND scores.metric = st.metric"
        " AND scores.scorer = st.scorer"
    )


class ScoreStore(StoreBase):
    def put_scores(self, scores: Iterable[Score]) -> int:
        """Insert or replace scores keyed by (sample, version, metric, scorer); returns the count.

        Staged in a TEMP table, then written with one INSERT ... SELECT: one statement fires
        the count triggers (m018) for its rows without a statement journal per row (a row at a
        time, the triggers made writing 400,000 scores 3.7 times slower), and on PostgreSQL
        appends one delta row, not one per score. Of repeated keys the last one counts.

        On PostgreSQL the scores already there are updated by a statement of their own first:
        an upsert fires its INSERT and its UPDATE statement triggers each with half of the
        rows, and the flag counts (m020) need to know the whole change to a sample."""
        created = now()
        rows = {
            (s.sample_id, to_db_candidate(s.candidate_id), s.metric, s.scorer): (
                s.value, dumps(s.detail), s.run_id, s.created_at or created
            )
            for s in scores
        }  # fmt: skip
        if not rows:
            return 0
        with self.transaction():
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_STAGED} (seq INTEGER PRIMARY KEY,"
                f" {typed(_SCORE_COLUMNS)})"
            )
            self.conn.execute(f"DELETE FROM {_STAGED}")
            columns = ", ".join(_SCORE_COLUMNS)
            self.conn.executemany(
                f"INSERT INTO {_STAGED} ({columns}) VALUES ({', '.join('?' * 8)})",
                [(*key, *values) for key, values in rows.items()],
            )
            if self.dialect == POSTGRESQL:
                self.conn.execute(update_scores_from(_STAGED))
            self.conn.execute(
                f"INSERT INTO scores ({columns}) SELECT {columns} FROM {_STAGED}"
                " WHERE true ORDER BY seq"
                " ON CONFLICT (sample_id, candidate_id, metric, scorer) DO UPDATE SET"
                " value = excluded.value, detail = excluded.detail, run_id = excluded.run_id,"
                " created_at = excluded.created_at"
            )
            # Keep the derived score_changes of the touched samples in step (see m009).
            touched = json_list({key[0] for key in rows})
            self.conn.execute(
                "DELETE FROM score_changes WHERE sample_id IN (SELECT value FROM json_each(?))",
                [touched],
            )
            self.conn.execute(
                f"INSERT INTO score_changes {SCORE_CHANGES_SELECT}"
                " AND c.sample_id IN (SELECT value FROM json_each(?))",
                [touched],
            )
            self.conn.execute(f"DELETE FROM {_STAGED}")
        return len(rows)

    def scores_for(self, sample_id: int) -> list[Score]:
        rows = self.query(
            "SELECT * FROM scores WHERE sample_id = ? ORDER BY candidate_id, metric, scorer",
            [sample_id],
        )
        return [_score(row) for row in rows]

    def scores_for_samples(
        self, sample_ids: Iterable[int], metrics: Iterable[str] | None = None
    ) -> dict[int, list[Score]]:
        """These samples' scores; with `metrics`, only those metrics' and any whose detail
        names flags (what a selection rule reads: at 1M samples, 45 million score rows
        were mostly the content checks' text statistics, read only for their flags)."""
        found: dict[int, list[Score]] = {}
        only, params = "", [json_list(sample_ids)]
        if metrics is not None:
            only = " AND (metric IN (SELECT value FROM json_each(?)) OR detail LIKE '%\"flags\"%')"
            params.append(json_list(metrics))
        rows = self.query(
            "SELECT * FROM scores WHERE sample_id IN (SELECT value FROM json_each(?))"
            f"{only} ORDER BY sample_id, candidate_id, metric, scorer",
            params,
        )
        for row in rows:
            found.setdefault(row["sample_id"], []).append(_score(row))
        return found

    def scored_versions(
        self, sample_ids: Iterable[int], metric: str, scorer: str
    ) -> set[tuple[int, int | None]]:
        """(sample_id, candidate_id) pairs of these samples that already have this metric
        from this scorer. Asked a chunk of samples at a time: a set for a whole dataset grew
        with it (3,000,000 pairs at 1,000,000 samples)."""
        rows = self.conn.execute(
            "SELECT sample_id, candidate_id FROM scores"
            " WHERE sample_id IN (SELECT value FROM json_each(?)) AND metric = ? AND scorer = ?",
            [json_list(sample_ids), metric, scorer],
        )
        return {(sample_id, from_db_candidate(cid)) for sample_id, cid in rows}

    def scorers(self, metric: str | None = None) -> list[tuple[str, str]]:
        """Distinct (metric, scorer) pairs present in the store."""
        where, params = ("WHERE metric = ?", [metric]) if metric else ("", [])
        rows = self.conn.execute(
            f"SELECT DISTINCT metric, scorer FROM scores {where} ORDER BY metric, scorer", params
        )
        return [tuple(row) for row in rows]

    def put_suggestions(self, suggestions: Iterable[Suggestion]) -> int:
        """Store the latest suggestion per sample (replacing an older one)."""
        created = now()
        rows = [
            (
                s.sample_id,
                to_db_candidate(s.candidate_id),
                s.rule,
                s.reason,
                s.confidence,
                s.run_id,
                s.created_at or created,
                s.decision,
            )
            for s in suggestions
        ]
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO suggestions (sample_id, candidate_id, rule, reason,"
                " confidence, run_id, created_at, decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (sample_id) DO UPDATE SET candidate_id = excluded.candidate_id,"
                " rule = excluded.rule, reason = excluded.reason,"
                " confidence = excluded.confidence, run_id = excluded.run_id,"
                " created_at = excluded.created_at, decision = excluded.decision",
                rows,
            )
        return len(rows)

    def suggestion(self, sample_id: int) -> Suggestion | None:
        row = self.query_one("SELECT * FROM suggestions WHERE sample_id = ?", [sample_id])
        if row is None:
            return None
        row["candidate_id"] = from_db_candidate(row["candidate_id"])
        return Suggestion(**row)

    def suggestions(self, dataset_id: int) -> dict[int, Suggestion]:
        rows = self.query(
            "SELECT sg.* FROM suggestions sg JOIN samples s ON s.id = sg.sample_id"
            " WHERE s.dataset_id = ?",
            [dataset_id],
        )
        found = {}
        for row in rows:
            row["candidate_id"] = from_db_candidate(row["candidate_id"])
            found[row["sample_id"]] = Suggestion(**row)
        return found
