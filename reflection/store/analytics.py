"""Aggregate queries for the dashboard, bulk rules and background jobs.

Everything here aggregates in SQL and returns small results, so a 100,000-sample store stays
fast: histograms come back as bins, scatter plots as a thinned sample of points.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ReflectionError
from ..records import FAILED_STATUSES
from ..records import REVIEW_STATUSES as STATUSES
from .base import StoreBase, json_list
from .connection import SQLITE

# A condition's comparison as SQL: the whitelist (records.OPERATORS) mapped to SQL's spelling.
_SQL_OPERATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "==": "=", "!=": "<>"}
# The covering index of migration m006, named so the planner never prefers (metric, value),
# which reads every row of a metric before filtering by dataset.
_BY_METRIC = "INDEXED BY scores_dashboard"
# Past this many positions to probe (a dataset whose positions lie far apart), thinning scans.
THINNED_PROBES = 100_000


def _latest_score(version_sql: str, scorer: str | None) -> str:
    """SQL for one metric's value on a version (the newest scorer's, unless one is named):
    one probe of the scores_version index (m022), which holds the value and the newest last."""
    by_scorer = " AND x.scorer = ?" if scorer else ""
    return (
        "(SELECT x.value FROM scores x WHERE x.sample_id = s.id"
        f" AND x.candidate_id = {version_sql} AND x.metric = ?{by_scorer}"
        " ORDER BY x.id DESC LIMIT 1)"
    )


def _latest_score_join(alias: str, version_sql: str, scorer: str | None) -> str:
    """The same value as a LATERAL join whose row is `alias` (its column `value`; NULL with
    no score), for counting on PostgreSQL. There a scalar subquery is a SubPlan, which runs
    in the leader process only, and so did the join to suggestions that carried it; as joins,
    the parallel workers join samples, states and suggestions and the leader only probes the
    scores (at 1,000,000 samples, 1.67 million probes: 3.3-3.9 s -> 2.4-2.6 s)."""
    return f"LEFT JOIN LATERAL {_latest_score(version_sql, scorer)} {alias} ON true"


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
            return "1 = 0", []
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

    def metric_scorers(self) -> list[tuple[str, str]]:
        """Distinct (metric, scorer) pairs with scores: a skip-scan, one index seek per pair."""
        found = []
        metric = self.scalar("SELECT min(metric) FROM scores")
        while metric is not None:
            scorer = self.scalar("SELECT min(scorer) FROM scores WHERE metric = ?", [metric])
            while scorer is not None:
                found.append((metric, scorer))
                scorer = self.scalar(
                    "SELECT min(scorer) FROM scores WHERE metric = ? AND scorer > ?",
                    [metric, scorer],
                )
            metric = self.scalar("SELECT min(metric) FROM scores WHERE metric > ?", [metric])
        return found

    def metric_ranges(self, dataset_id: int) -> list[dict[str, Any]]:
        """Per (metric, scorer): how many values, min and max, within one dataset."""
        where, params = self._dataset_range(dataset_id)
        found = []
        for metric, scorer in self.metric_scorers():
            [row] = self.query(  # an aggregate: one row
                f"SELECT count(value) AS n, min(value) AS lo, max(value) AS hi"
                f" FROM scores {_BY_METRIC} WHERE metric = ? AND scorer = ?"
                f" AND {where.format(col='sample_id')}",
                [metric, scorer, *params],
            )
            found.append({"metric": metric, "scorer": scorer, **row})
        return found

    def thinned_ids(self, dataset_id: int, every: int = 1) -> list[int]:
        """Ids of the dataset's samples whose position is a multiple of `every`, in order:
        a probe of the (dataset, position) index per such sample, so 10,000 of 1,000,000 cost
        about what 10,000 samples do."""
        top = self.conn.execute(
            "SELECT max(position) FROM samples WHERE dataset_id = ?", [dataset_id]
        ).fetchone()[0]
        if top is None:
            return []
        multiples = range(0, top + 1, every)
        if every == 1 or len(multiples) > THINNED_PROBES:  # all, or positions far apart
            sql = "SELECT id FROM samples WHERE dataset_id = ? AND position % ? = 0"
            params: list[Any] = [dataset_id, every]
        else:
            sql = (
                "SELECT id FROM samples WHERE dataset_id = ?"
                " AND position IN (SELECT value FROM json_each(?))"
            )
            params = [dataset_id, json_list(multiples)]
        return [row[0] for row in self.conn.execute(f"{sql} ORDER BY position", params)]

    def thinned_scores(
        self, ids: Sequence[int], metric: str, scorer: str
    ) -> list[tuple[int, int, float]]:
        """(sample_id, candidate_id, value) of one metric from one scorer, for samples `ids`
        (`thinned_ids`): a probe of the covering index per sample (45 ms for 10,000)."""
        return self.conn.execute(
            f"SELECT sample_id, candidate_id, value FROM scores {_BY_METRIC}"
            " WHERE metric = ? AND scorer = ? AND sample_id IN (SELECT value FROM json_each(?))"
            " AND value IS NOT NULL",
            [metric, scorer, json_list(ids)],
        ).fetchall()

    def candidate_kinds(self, ids: Sequence[int]) -> dict[int, str]:
        """{candidate id: kind} for samples `ids`: the (sample_id, kind) index covers it."""
        rows = self.conn.execute(
            "SELECT c.id, c.kind FROM candidates c"
            " WHERE c.sample_id IN (SELECT value FROM json_each(?))",
            [json_list(ids)],
        )
        return dict(rows.fetchall())

    def import_flag_counts(self, dataset_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT j.value, count(*) FROM samples s, json_each(s.flags) j"
            " WHERE s.dataset_id = ? AND s.flags != '[]' GROUP BY j.value",
            [dataset_id],
        )
        return {str(flag): n for flag, n in rows}

    # --- bulk rules -------------------------------------------------------------------------

    def rule_matches(
        self, dataset_id: int, *, limit: int | None = None, **rule: Any
    ) -> Iterator[tuple[int, int]]:
        """(sample_id, candidate_id of the target version; 0 = original) for the samples a
        rule matches (its terms: `_rule_query`), in queue order, read as they are used."""
        version, version_params, where, params = self._rule_query(dataset_id, **rule)
        sql = f"SELECT s.id, {version} AS version {where} ORDER BY s.position, s.id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        _, rows = self.stream(sql, [*version_params, *params])
        return ((sample_id, cid or 0) for sample_id, cid in rows)

    def rule_match_count(self, dataset_id: int, **rule: Any) -> int:
        """How many samples `rule_matches` would give, counted in the database."""
        _, _, where, params = self._rule_query(dataset_id, once=True, **rule)
        return self.count(f"SELECT count(*) {where}", params)

    def _rule_query(
        self,
        dataset_id: int,
        *,
        target: str,
        kind: str | None = None,
        statuses: Sequence[str] = ("undecided",),
        conditions: Sequence[tuple[str, str | None, str, float, float | None]] = (),
        reflection_failed: bool = False,
        suggested_decision: str = "accept",
        once: bool = False,
    ) -> tuple[str, list[Any], str, list[Any]]:
        """The target version's SQL and its parameters; the FROM ... WHERE of the matching
        samples and its parameters.

        target: "suggested" (the version of a suggestion whose decision is
        `suggested_decision`; samples without one never match),
        "original", or "kind" (the newest usable candidate of `kind`; samples without one
        never match). conditions: (metric, scorer or None, operator, value, value the original
        has when unscored or None) on the target version's scores; a missing score never
        matches. reflection_failed: only samples with
        candidates of which none is usable. once: for counting (no order): a kind's version
        is then `s.v` of a subquery.
        """
        bad_status = set(statuses) - set(STATUSES)
        if bad_status or not statuses:
            raise ReflectionError(f"unknown sample status {sorted(bad_status)} in a bulk rule")
        joins: list[str] = []
        marks = ",".join("?" * len(statuses))
        base = ["s.dataset_id = ?", f"coalesce(st.status, 'undecided') IN ({marks})"]
        base_params: list[Any] = [dataset_id, *statuses]
        clauses: list[str] = []
        params: list[Any] = []
        version_params: list[Any] = []  # what each use of `version` binds
        if target == "suggested":
            joins.append("JOIN suggestions sg ON sg.sample_id = s.id")
            version = "sg.candidate_id"
            clauses.append("sg.decision = ?")
            params.append(suggested_decision)
        elif target == "original":
            version = "0"
        elif target == "kind":
            if not kind:
                raise ReflectionError("a bulk rule on a candidate kind needs the kind")
            version = (
                "(SELECT max(c.id) FROM candidates c WHERE c.sample_id = s.id AND c.kind = ?"
                " AND c.status NOT IN ('failed', 'error'))"
            )
            version_params = [kind]
        else:
            raise ReflectionError(f"unknown bulk target {target!r}")
        # Counting, a kind's version is looked up once per sample in a subquery kept apart
        # (LIMIT -1 / OFFSET 0 stops the planner from copying it into every condition): at
        # 1M samples 3.6 s -> 1.5 s. Listing in order keeps the plain form, which stops early.
        inner = None
        if once and target == "kind":
            inner, version, version_params = version, "s.v", []
        select_version, select_params = version, list(version_params)
        if target == "kind":
            clauses.append(f"{version} IS NOT NULL")
            params.extend(version_params)
        laterals: list[str] = []  # counting on PostgreSQL: each score as a join
        lateral_params: list[Any] = []
        for n, (metric, scorer, op, value, original_default) in enumerate(conditions):
            if op not in _SQL_OPERATORS:
                raise ReflectionError(
                    f"unknown comparison {op!r} (expected one of {' '.join(_SQL_OPERATORS)})"
                )
            probe = [*version_params, metric, *([scorer] if scorer else [])]
            if once and self.dialect != SQLITE:
                laterals.append(_latest_score_join(f"c{n}", version, scorer))
                lateral_params.extend(probe)
                score = f"c{n}.value"
            else:
                score = _latest_score(version, scorer)
                params.extend(probe)
            if original_default is not None:
                # A score the original has by definition (drift from itself is none).
                score = f"coalesce({score}, CASE WHEN {version} = 0 THEN ? END)"
                params.extend([*version_params, original_default])
            clauses.append(f"{score} {op} ?")
            params.append(value)
        if reflection_failed:
            failed = ",".join(f"'{status}'" for status in FAILED_STATUSES)
            clauses.append(
                "EXISTS (SELECT 1 FROM candidates c WHERE c.sample_id = s.id AND c.kind != 'edit')"
                " AND NOT EXISTS (SELECT 1 FROM candidates c WHERE c.sample_id = s.id"
                f" AND c.kind != 'edit' AND c.status NOT IN ({failed}))"
            )
        states = "samples s LEFT JOIN sample_state st ON st.sample_id = s.id"
        if inner is not None:
            fence = "LIMIT -1" if self.dialect == SQLITE else "OFFSET 0"
            where = (
                f"FROM (SELECT s.id AS id, {inner} AS v FROM {states} WHERE {' AND '.join(base)}"
                f" {fence}) s {' '.join(laterals)} WHERE {' AND '.join(clauses)}"
            )
            return (select_version, select_params, where,
                    [kind, *base_params, *lateral_params, *params])  # fmt: skip
        joins += laterals
        where = f"FROM {states} {' '.join(joins)} WHERE {' AND '.join(base + clauses)}"
        return select_version, select_params, where, [*lateral_params, *base_params, *params]

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
                # + keeps the planner on the sample index (written table.column, which the
                # PostgreSQL translation drops the + of): by metric it read every score of
                # the metrics (0.5 s at 1M samples) for a handful of versions.
                f" AND +scores.metric IN ({','.join('?' * len(metrics))}) ORDER BY id",
                [*chunk, *metrics],
            )
            for sample_id, cid, metric, value in rows:
                if (sample_id, cid) in wanted:
                    found.setdefault((sample_id, cid), {})[metric] = value
        return found

    def runs_touching(self, kind: str, dataset_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs of one kind with how many of their reviews are still in force: on
        top of their sample's stack, or on an assigned dataset the latest on their own track
        (what `undo_run` would take back)."""
        assigned = self.scalar(
            "SELECT EXISTS (SELECT 1 FROM assignments WHERE dataset_id = ?)", [dataset_id]
        )
        standing = "reviewer_state" if assigned else "sample_state"
        return self.query(
            "SELECT r.id, r.status, r.started_at, r.settings, r.counters,"
            f" (SELECT count(*) FROM reviews rv JOIN {standing} st"
            "  ON st.sample_id = rv.sample_id AND st.review_id = rv.id"
            "  WHERE rv.run_id = r.id) AS in_force"
            " FROM runs r WHERE r.kind = ? AND r.dataset_id = ? ORDER BY r.id DESC LIMIT ?",
            [kind, dataset_id, limit],
        )
