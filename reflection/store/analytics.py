"""Aggregate queries for the dashboard, bulk rules and background jobs.

Everything here aggregates in SQL and returns small results, so a 100,000-sample store stays
fast: histograms come back as bins, scatter plots as a thinned sample of points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ReflectionError
from .base import StoreBase

# Comparisons a rule may use on a score; a whitelist, because the operator goes into SQL text.
OPERATORS = ("<", "<=", ">", ">=")
# Candidate statuses that mean the oracle's reply gave no usable version.
FAILED_STATUSES = ("failed", "error")
# Statuses a sample can be in; "undecided" has no sample_state row.
STATUSES = ("undecided", "accepted", "edited", "rejected", "skipped")


def _latest_score(version_sql: str, scorer: str | None) -> str:
    """SQL for one metric's value on a version (the newest scorer's, unless one is named)."""
    by_scorer = " AND sc.scorer = ?" if scorer else ""
    return (
        "(SELECT sc.value FROM scores sc WHERE sc.sample_id = s.id"
        f" AND sc.candidate_id = {version_sql} AND sc.metric = ?{by_scorer}"
        " ORDER BY sc.id DESC LIMIT 1)"
    )


class AnalyticsStore(StoreBase):
    # --- cache keys -------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """Numbers that change whenever the store does: cache keys for derived views.

        Max ids only grow (rows are appended), and every scoring, reflection or selection run
        adds or finishes a row in `runs`, which covers scores replaced in place.
        """
        row = self.conn.execute(
            "SELECT (SELECT max(id) FROM samples), (SELECT max(id) FROM candidates),"
            " (SELECT max(id) FROM scores), (SELECT max(id) FROM reviews),"
            " (SELECT count(*) || ':' || max(id) || ':' || max(finished_at) FROM runs)"
        ).fetchone()
        keys = ("samples", "candidates", "scores", "reviews", "runs")
        return {key: value or 0 for key, value in zip(keys, row, strict=True)}

    def _dataset_range(self, dataset_id: int) -> tuple[str, list[Any]]:
        """A filter on `sample_id` for one dataset: an id range when its ids are contiguous.

        An import inserts a dataset's samples in one go, so their ids usually form one run;
        then a range scan on an index replaces a join with `samples` for every score row.
        """
        low, high, n = self.conn.execute(
            "SELECT min(id), max(id), count(*) FROM samples WHERE dataset_id = ?", [dataset_id]
        ).fetchone()
        if not n:
            return "0", []
        if high - low + 1 == n:
            return "{col} BETWEEN ? AND ?", [low, high]
        return "{col} IN (SELECT id FROM samples WHERE dataset_id = ?)", [dataset_id]

    # --- dashboard --------------------------------------------------------------------------

    def decided_over_time(self, dataset_id: int, bucket_chars: int) -> list[dict[str, Any]]:
        """Samples decided (their review in force) per time bucket and status.

        `bucket_chars` cuts the ISO timestamp: 10 for days, 13 for hours, 16 for minutes.
        """
        return self.query(
            "SELECT substr(decided_at, 1, ?) AS bucket, status, count(*) AS n FROM sample_state"
            " WHERE dataset_id = ? AND status != 'skipped' GROUP BY bucket, status ORDER BY bucket",
            [bucket_chars, dataset_id],
        )

    def decided_span(self, dataset_id: int) -> tuple[str | None, str | None]:
        row = self.conn.execute(
            "SELECT min(decided_at), max(decided_at) FROM sample_state WHERE dataset_id = ?",
            [dataset_id],
        ).fetchone()
        return row[0], row[1]

    def decisions_by_annotator(self, dataset_id: int) -> list[dict[str, Any]]:
        """Decisions in force per annotator and status."""
        return self.query(
            "SELECT annotator, status, count(*) AS n FROM sample_state WHERE dataset_id = ?"
            " GROUP BY annotator, status ORDER BY annotator, status",
            [dataset_id],
        )

    def review_log_by_annotator(self, dataset_id: int) -> list[dict[str, Any]]:
        """Every review ever appended (undos included) per annotator and decision."""
        where, params = self._dataset_range(dataset_id)
        return self.query(
            f"SELECT annotator, decision, count(*) AS n FROM reviews"
            f" WHERE {where.format(col='sample_id')} GROUP BY annotator, decision",
            params,
        )

    def metric_ranges(self, dataset_id: int) -> list[dict[str, Any]]:
        """Per (metric, scorer): how many values, min and max, within one dataset."""
        where, params = self._dataset_range(dataset_id)
        return self.query(
            f"SELECT metric, scorer, count(value) AS n, min(value) AS lo, max(value) AS hi"
            f" FROM scores WHERE {where.format(col='sample_id')}"
            " GROUP BY metric, scorer ORDER BY metric, scorer",
            params,
        )

    def score_histogram(
        self, dataset_id: int, metric: str, scorer: str, lo: float, width: float, bins: int
    ) -> list[dict[str, Any]]:
        """Counts per bin of one metric, split into originals and each candidate kind."""
        where, params = self._dataset_range(dataset_id)
        return self.query(
            "SELECT CASE WHEN sc.candidate_id = 0 THEN 'original' ELSE c.kind END AS version,"
            " min(max(CAST((sc.value - ?) / ? AS INTEGER), 0), ?) AS bin, count(*) AS n"
            " FROM scores sc LEFT JOIN candidates c ON c.id = sc.candidate_id"
            f" WHERE sc.metric = ? AND sc.scorer = ? AND sc.value IS NOT NULL"
            f" AND {where.format(col='sc.sample_id')} GROUP BY version, bin ORDER BY version, bin",
            [lo, width, bins - 1, metric, scorer, *params],
        )

    def metric_shift(
        self, dataset_id: int, metric: str, scorer: str, lo: float, width: float, bins: int
    ) -> list[dict[str, Any]]:
        """Histogram of (candidate value - original value) of one metric, per candidate kind."""
        where, params = self._dataset_range(dataset_id)
        return self.query(
            "SELECT c.kind AS kind,"
            " min(max(CAST((sc.value - so.value - ?) / ? AS INTEGER), 0), ?) AS bin,"
            " count(*) AS n, sum(sc.value < so.value) AS lower"
            " FROM scores sc JOIN scores so ON so.sample_id = sc.sample_id"
            " AND so.candidate_id = 0 AND so.metric = sc.metric AND so.scorer = sc.scorer"
            " JOIN candidates c ON c.id = sc.candidate_id"
            " WHERE sc.metric = ? AND sc.scorer = ? AND sc.candidate_id != 0"
            f" AND sc.value IS NOT NULL AND so.value IS NOT NULL AND {where.format(col='sc.sample_id')}"
            " GROUP BY kind, bin ORDER BY kind, bin",
            [lo, width, bins - 1, metric, scorer, *params],
        )

    def metric_shift_range(self, dataset_id: int, metric: str, scorer: str) -> dict[str, Any]:
        """Count, min and max of (candidate value - original value) for one metric."""
        where, params = self._dataset_range(dataset_id)
        return self.query_one(
            "SELECT count(*) AS n, min(sc.value - so.value) AS lo, max(sc.value - so.value) AS hi"
            " FROM scores sc JOIN scores so ON so.sample_id = sc.sample_id"
            " AND so.candidate_id = 0 AND so.metric = sc.metric AND so.scorer = sc.scorer"
            " WHERE sc.metric = ? AND sc.scorer = ? AND sc.candidate_id != 0"
            f" AND sc.value IS NOT NULL AND so.value IS NOT NULL AND {where.format(col='sc.sample_id')}",
            [metric, scorer, *params],
        )

    def metric_pairs(
        self, dataset_id: int, metric: str, scorer: str, limit: int
    ) -> list[dict[str, Any]]:
        """(original, candidate) values of one metric for about `limit` evenly spread pairs."""
        where, params = self._dataset_range(dataset_id)
        total = self.scalar(
            f"SELECT count(*) FROM scores WHERE metric = ? AND scorer = ? AND candidate_id != 0"
            f" AND {where.format(col='sample_id')}",
            [metric, scorer, *params],
        )
        step = max(1, -(-total // max(limit, 1)))
        return self.query(
            "SELECT sc.sample_id, c.kind, so.value AS original, sc.value AS candidate"
            " FROM scores sc JOIN scores so ON so.sample_id = sc.sample_id"
            " AND so.candidate_id = 0 AND so.metric = sc.metric AND so.scorer = sc.scorer"
            " JOIN candidates c ON c.id = sc.candidate_id"
            " WHERE sc.metric = ? AND sc.scorer = ? AND sc.candidate_id != 0 AND sc.id % ? = 0"
            f" AND sc.value IS NOT NULL AND so.value IS NOT NULL AND {where.format(col='sc.sample_id')}"
            " ORDER BY sc.sample_id LIMIT ?",
            [metric, scorer, step, *params, limit],
        )

    def acceptance_by_kind(self, dataset_id: int) -> list[dict[str, Any]]:
        """Per candidate kind: decided samples that had one, and how many took it.

        "original" counts every decided sample as offered and those that kept the original.
        """
        rows = self.query(
            "SELECT c.kind AS kind, count(DISTINCT st.sample_id) AS offered,"
            " count(DISTINCT CASE WHEN st.candidate_id = c.id THEN st.sample_id END) AS accepted"
            " FROM sample_state st JOIN candidates c ON c.sample_id = st.sample_id"
            " WHERE st.dataset_id = ? AND st.status IN ('accepted', 'edited', 'rejected')"
            " GROUP BY c.kind ORDER BY c.kind",
            [dataset_id],
        )
        original = self.query_one(
            "SELECT count(*) AS offered,"
            " coalesce(sum(status = 'accepted' AND candidate_id = 0), 0) AS accepted"
            " FROM sample_state WHERE dataset_id = ?"
            " AND status IN ('accepted', 'edited', 'rejected')",
            [dataset_id],
        )
        return [{"kind": "original", **original}, *rows]

    def import_flag_counts(self, dataset_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT j.value, count(*) FROM samples s, json_each(s.flags) j"
            " WHERE s.dataset_id = ? AND s.flags != '[]' GROUP BY j.value",
            [dataset_id],
        )
        return {str(flag): n for flag, n in rows}

    def candidate_status_counts(self, dataset_id: int) -> dict[str, int]:
        """Samples with at least one candidate in each status."""
        where, params = self._dataset_range(dataset_id)
        rows = self.conn.execute(
            f"SELECT status, count(DISTINCT sample_id) FROM candidates"
            f" WHERE {where.format(col='sample_id')} GROUP BY status",
            params,
        )
        return {status: n for status, n in rows}

    def samples_with_score(
        self, dataset_id: int, metric: str, op: str, value: float, *, original: bool | None = None
    ) -> int:
        """Samples with some version whose `metric` compares `op` to `value` (any scorer)."""
        if op not in OPERATORS:
            raise ReflectionError(f"unknown comparison {op!r} (expected one of {OPERATORS})")
        where, params = self._dataset_range(dataset_id)
        version = {None: "", True: " AND candidate_id = 0", False: " AND candidate_id != 0"}
        return self.scalar(
            f"SELECT count(DISTINCT sample_id) FROM scores WHERE metric = ? AND value {op} ?"
            f"{version[original]} AND {where.format(col='sample_id')}",
            [metric, value, *params],
        )

    # --- bulk rules -------------------------------------------------------------------------

    def rule_matches(
        self,
        dataset_id: int,
        *,
        target: str,
        kind: str | None = None,
        statuses: Sequence[str] = ("undecided",),
        conditions: Sequence[tuple[str, str | None, str, float, float | None]] = (),
        reflection_failed: bool = False,
        limit: int | None = None,
    ) -> list[tuple[int, int]]:
        """(sample_id, candidate_id of the target version; 0 = original) for matching samples.

        target: "suggested" (the suggestion's version; samples without one never match),
        "original", or "kind" (the newest usable candidate of `kind`; samples without one
        never match). conditions: (metric, scorer or None, operator, value, value the original
        has when unscored or None) on the target version's scores; a missing score never
        matches. reflection_failed: only samples with
        candidates of which none is usable.
        """
        bad_status = set(statuses) - set(STATUSES)
        if bad_status or not statuses:
            raise ReflectionError(f"unknown sample status {sorted(bad_status)} in a bulk rule")
        joins, clauses, params = [], ["s.dataset_id = ?"], [dataset_id]
        if target == "suggested":
            joins.append("JOIN suggestions sg ON sg.sample_id = s.id")
            version = "sg.candidate_id"
        elif target == "original":
            version = "0"
        elif target == "kind":
            if not kind:
                raise ReflectionError("a bulk rule on a candidate kind needs the kind")
            version = (
                "(SELECT max(c.id) FROM candidates c WHERE c.sample_id = s.id AND c.kind = ?"
                " AND c.status NOT IN ('failed', 'error'))"
            )
        else:
            raise ReflectionError(f"unknown bulk target {target!r}")
        select_version = version
        select_params = [kind] if target == "kind" else []
        if target == "kind":
            clauses.append(f"{version} IS NOT NULL")
            params.append(kind)
        marks = ",".join("?" * len(statuses))
        clauses.append(f"coalesce(st.status, 'undecided') IN ({marks})")
        params.extend(statuses)
        for metric, scorer, op, value, original_default in conditions:
            if op not in OPERATORS:
                raise ReflectionError(f"unknown comparison {op!r} (expected one of {OPERATORS})")
            score = _latest_score(version, scorer)
            params.extend([kind] if target == "kind" else [])
            params.extend([metric, *([scorer] if scorer else [])])
            if original_default is not None:
                # A score the original has by definition (drift from itself is none).
                score = f"coalesce({score}, CASE WHEN {version} = 0 THEN ? END)"
                params.extend([kind] if target == "kind" else [])
                params.append(original_default)
            clauses.append(f"{score} {op} ?")
            params.append(value)
        if reflection_failed:
            failed = ",".join(f"'{status}'" for status in FAILED_STATUSES)
            clauses.append(
                "EXISTS (SELECT 1 FROM candidates c WHERE c.sample_id = s.id AND c.kind != 'edit')"
                " AND NOT EXISTS (SELECT 1 FROM candidates c WHERE c.sample_id = s.id"
                f" AND c.kind != 'edit' AND c.status NOT IN ({failed}))"
            )
        sql = (
            f"SELECT s.id, {select_version} AS version FROM samples s"
            f" LEFT JOIN sample_state st ON st.sample_id = s.id {' '.join(joins)}"
            f" WHERE {' AND '.join(clauses)} ORDER BY s.position, s.id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self.conn.execute(sql, [*select_params, *params]).fetchall()
        return [(sample_id, cid or 0) for sample_id, cid in rows]

    def scores_of_versions(
        self, versions: Sequence[tuple[int, int]], metrics: Sequence[str]
    ) -> dict[tuple[int, int], dict[str, float]]:
        """{(sample_id, candidate_id): {metric: value}} for a few versions (newest scorer wins)."""
        found: dict[tuple[int, int], dict[str, float]] = {}
        if not versions or not metrics:
            return found
        ids = sorted({sample_id for sample_id, _ in versions})
        wanted = set(versions)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.conn.execute(
                f"SELECT sample_id, candidate_id, metric, value FROM scores"
                f" WHERE sample_id IN ({','.join('?' * len(chunk))})"
                f" AND metric IN ({','.join('?' * len(metrics))}) ORDER BY id",
                [*chunk, *metrics],
            )
            for sample_id, cid, metric, value in rows:
                if (sample_id, cid) in wanted:
                    found.setdefault((sample_id, cid), {})[metric] = value
        return found

    def runs_touching(self, kind: str, dataset_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs of one kind with how many of their reviews are still in force."""
        return self.query(
            "SELECT r.id, r.status, r.started_at, r.settings, r.counters,"
            " (SELECT count(*) FROM reviews rv JOIN sample_state st"
            "  ON st.sample_id = rv.sample_id AND st.review_id = rv.id"
            "  WHERE rv.run_id = r.id) AS in_force"
            " FROM runs r WHERE r.kind = ? AND r.dataset_id = ? ORDER BY r.id DESC LIMIT ?",
            [kind, dataset_id, limit],
        )
