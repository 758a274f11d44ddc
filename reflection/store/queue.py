"""The review queue's SQL: which samples match a filter, in which order, and full-text search.

Built for 100,000-sample datasets: filters become `IN (subquery)` sets that SQLite builds
once from an index (sample_state by status, scores by metric and value, candidates by
status, the FTS5 tables), so a query returns only sample ids and never loads a whole table
into Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ReflectionError
from .base import json_list
from .connection import POSTGRESQL
from .queue_filters import (
    DENSE,
    VERSIONS,
    Member,
    ScoreRange,
    flag_members,
    imported_flags_sql,
    range_member,
    status_members,
)
from .search import (
    bounded_search,
    fts_query,
    probed_search,
    search_condition,
    search_set_is_small,
)
from .tallies import TallyStore

__all__ = ["VERSIONS", "QueueQuery", "QueueStore", "ScoreRange", "fts_query"]

# Rows of a score's index read at a time when a queue is walked in its order.
WALK_PAGE = 2_000
# Samples probed for a search's words in queue order before its set is built (PostgreSQL at
# 1M: 5,000 left a word in 6 % of the rows to its set, 1 s; 20,000 cost a rare one 90 ms).
SEARCH_WALK = 10_000
SORT_KEYS = ("position", "id", "confidence", "original", "candidate", "change")


@dataclass(frozen=True)
class QueueQuery:
    """A filter and an order for the review queue. Empty tuples mean "no filter"."""

    statuses: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # any of these
    ranges: tuple[ScoreRange, ...] = ()
    text: str = ""
    sort: str = "position"
    sort_metric: str = ""
    descending: bool = False
    spotcheck: int | None = None  # only this spot-check's samples, in its drawn order
    # A reviewer's own queue on an assigned dataset: only their active assignments, and
    # statuses are their own decisions (blind to the other reviewers').
    reviewer: str | None = None


class QueueStore(TallyStore):
    def queue_ids(
        self,
        dataset_id: int,
        query: QueueQuery | None = None,
        *,
        limit: int | None = None,
        exclude: list[int] | None = None,
    ) -> list[int]:
        """Ids of the dataset's samples that match `query`, in its order.

        `limit` keeps the first ones only; `exclude` leaves out ids already seen, so the next
        call continues a queue (in order, whatever was decided meanwhile).
        """
        q = query or QueueQuery()
        known: dict[Member, bool] = {}  # each set sized once per call, whichever plan runs
        walks = q.sort == "confidence" or (q.sort in ("change", "candidate") and q.sort_metric)
        if walks and q.spotcheck is None:
            walked = self._walked_ids(dataset_id, q, limit, exclude, known)
            if walked is not None:
                return walked
        if limit is not None and q.text.strip():
            probed = self._probed_search(dataset_id, q, limit, exclude, known)
            if probed is not None:
                return probed
        # (PostgreSQL's planner leads with a small set by itself.)
        lead = self.dialect != POSTGRESQL and search_set_is_small(self.conn, q.text, DENSE)
        sql, params, _ = self._queue_plan(dataset_id, q, exclude=exclude, known=known, lead=lead)
        if limit is not None:
            sql, params = f"{sql} LIMIT ?", [*params, limit]
        return [row[0] for row in self.conn.execute(sql, params)]

    def _probed_search(
        self,
        dataset_id: int,
        q: QueueQuery,
        limit: int,
        exclude: list[int] | None,
        known: dict[Member, bool],
    ) -> list[int] | None:
        """A search in source order: the first SEARCH_WALK samples of the queue without it,
        probed for the words (`search.probed_search`); None unless that fills the window
        (then the search's set is built instead)."""
        if q.sort not in ("position", "id") or q.spotcheck is not None:
            return None
        plain = dataclasses.replace(q, text="")
        sql, params, _ = self._queue_plan(dataset_id, plain, exclude=exclude, known=known)
        found = probed_search(self.conn, sql, params, q.text, limit, SEARCH_WALK)
        if found is not None or self.dialect == POSTGRESQL or q.sort != "position":
            return found

        def run(also: tuple[str, list[Any]]) -> list[int]:
            plan, args, _ = self._queue_plan(
                dataset_id, plain, exclude=exclude, also=also, known=known, lead=True
            )
            return [row[0] for row in self.conn.execute(f"{plan} LIMIT {int(limit)}", args)]

        return bounded_search(self.conn, dataset_id, q.text, limit, run)

    def queue_count(self, dataset_id: int, query: QueueQuery | None = None) -> int:
        """How many of the dataset's samples match `query`."""
        sql, params = self._queue_sql(dataset_id, query or QueueQuery(), order=False)
        return self.count(f"SELECT count(*) FROM ({sql}) AS matched", params)

    def statuses_of(self, sample_ids: list[int], reviewer: str | None = None) -> dict[int, str]:
        """The review status of each sample (undecided when it has no review in force);
        with `reviewer`, where each stands for that reviewer alone."""
        found = dict.fromkeys(sample_ids, "undecided")
        if reviewer is None:
            rows = self.conn.execute(
                "SELECT sample_id, status FROM sample_state"
                " WHERE sample_id IN (SELECT value FROM json_each(?))",
                [json_list(sample_ids)],
            )
        else:
            rows = self.conn.execute(
                "SELECT sample_id, status FROM reviewer_state WHERE kind = '' AND reviewer = ?"
                " AND sample_id IN (SELECT value FROM json_each(?))",
                [reviewer, json_list(sample_ids)],
            )
        found.update(dict(rows.fetchall()))
        return found

    def sample_flag_names(self, dataset_id: int) -> list[str]:
        """Distinct flags set on the dataset's samples at import."""
        rows = self.conn.execute(
            "SELECT DISTINCT j.value FROM samples s, json_each(s.flags) j"
            " WHERE s.dataset_id = ? AND s.flags != '[]' ORDER BY j.value",
            [dataset_id],
        )
        return [row[0] for row in rows]

    def metric_names(self) -> list[str]:
        """Distinct metric names that have scores."""
        # A recursive skip-scan over the (metric, scorer) index: one seek per metric instead
        # of reading every score row.
        rows = self.conn.execute(
            "WITH RECURSIVE m(name) AS (SELECT min(metric) FROM scores UNION ALL"
            " SELECT (SELECT min(metric) FROM scores WHERE metric > m.name) FROM m"
            " WHERE m.name IS NOT NULL) SELECT name FROM m WHERE name IS NOT NULL"
        )
        return [row[0] for row in rows]

    def _walked_ids(
        self,
        dataset_id: int,
        q: QueueQuery,
        limit: int | None,
        exclude: list[int] | None,
        known: dict[Member, bool],
    ) -> list[int] | None:
        """The queue in the order of a candidate's score (or its change, or the suggestion's
        confidence), read from that index a page at a time instead of ranking every sample:
        the first time a sample appears in ascending order is its smallest value, in
        descending its largest, which is what the order means. Each page's new ids are
        filtered in one query; samples without a value follow, by id. None when a small
        filter set should lead instead (a walk would read the whole index to find its few
        samples), or with a text search."""
        if q.text.strip():
            return None
        plain = dataclasses.replace(q, sort="id", descending=False)
        sql, params, driven = self._queue_plan(
            dataset_id, plain, order=False, chunked=True, known=known
        )
        if driven:
            return None
        # (table, column, which of its rows, their params, the same for a row `t`)
        table, column, rows_of, rows_params, of_t = {
            "change": ("score_changes", "change", "metric = ?", [q.sort_metric], "+t.metric = ?"),
            "candidate": ("scores", "value", "metric = ? AND candidate_id != 0", [q.sort_metric],
                          "+t.metric = ? AND t.candidate_id != 0"),
            "confidence": ("suggestions", "confidence", "1 = 1", [], "1 = 1"),
        }[q.sort]  # fmt: skip
        op, direction = ("<", "DESC") if q.descending else (">", "ASC")
        seen, last = set(exclude or ()), None
        found: list[int] = []
        while limit is None or len(found) < limit:
            after = "" if last is None else f" AND ({column}, sample_id) {op} (?, ?)"
            rows = self.conn.execute(
                f"SELECT sample_id, {column} FROM {table} WHERE {rows_of}"
                f" AND {column} IS NOT NULL{after}"
                f" ORDER BY {column} {direction}, sample_id {direction} LIMIT {WALK_PAGE}",
                [*rows_params, *(() if last is None else (last[1], last[0]))],
            ).fetchall()
            if not rows:
                break
            last = rows[-1]
            fresh = []
            for sample_id, value in rows:
                if sample_id not in seen:
                    seen.add(sample_id)
                    fresh.append((-value if q.descending else value, sample_id))
            fresh.sort()  # ties by id, as the ranked order has them
            if fresh:
                ids = [sample_id for _, sample_id in fresh]
                matched = {row[0] for row in self.conn.execute(sql, [*params, json_list(ids)])}
                found += [sample_id for sample_id in ids if sample_id in matched]
        if limit is not None and len(found) >= limit:
            return found[:limit]
        without = (
            f"NOT EXISTS (SELECT 1 FROM {table} t WHERE t.sample_id = s.id"
            f" AND {of_t} AND t.{column} IS NOT NULL)"
        )
        tail_sql, tail_params, _ = self._queue_plan(
            dataset_id, plain, exclude=exclude, also=(without, rows_params), known=known
        )
        more = "" if limit is None else f" LIMIT {limit - len(found)}"
        rows = self.conn.execute(tail_sql + more, tail_params).fetchall()
        return found + [row[0] for row in rows]

    def _queue_sql(
        self,
        dataset_id: int,
        q: QueueQuery,
        order: bool = True,
        exclude: list[int] | None = None,
    ) -> tuple[str, list[Any]]:
        sql, params, _ = self._queue_plan(dataset_id, q, order, exclude)
        return sql, params

    def _queue_plan(
        self,
        dataset_id: int,
        q: QueueQuery,
        order: bool = True,
        exclude: list[int] | None = None,
        chunked: bool = False,
        also: tuple[str, list[Any]] | None = None,
        known: dict[Member, bool] | None = None,
        lead: bool = False,
    ) -> tuple[str, list[Any], bool]:
        """(SQL, params, whether a small filter set leads). `chunked`: the ids are a JSON
        list given as one more, last parameter, and they lead the query. `also`: one more
        condition on `s`, with its params. `known`: sets already sized (see `_dense`).
        `lead`: the search's set (or `also`'s) is small, and leads."""
        known = {} if known is None else known
        where = ["+s.dataset_id = ?" if chunked else "s.dataset_id = ?"]
        params: list[Any] = [dataset_id]
        if exclude:
            where.append("s.id NOT IN (SELECT value FROM json_each(?))")
            params.append(json_list(exclude))
        if q.spotcheck is not None:
            where.append("s.id IN (SELECT sample_id FROM spotcheck_items WHERE spotcheck_id = ?)")
            params.append(q.spotcheck)
        if q.reviewer is not None:
            where.append(
                "s.id IN (SELECT sample_id FROM assignments WHERE dataset_id = ?"
                " AND reviewer = ? AND state = 'active')"
            )
            params += [dataset_id, q.reviewer]
        # Probes only pay in an order read from the start (the rest rank every sample).
        streamed = q.sort in ("position", "id") or q.spotcheck is not None
        searching = search_condition(self.dialect, q.text)
        # Each group is ORed sets (and, for flags, the import flags' own SQL); groups AND.
        groups: list[tuple[list[Member], tuple[str, list[Any]] | None]] = []
        if q.statuses:
            counts = self.status_counts(dataset_id) if q.reviewer is None else None
            groups.append((status_members(q.statuses, dataset_id, q.reviewer, counts), None))
        if q.flags:
            groups.append((flag_members(q.flags), imported_flags_sql(q.flags, dataset_id)))
        groups += [([range_member(item)], None) for item in q.ranges]
        # A group with only small sets leads the query (its few ids, then the order); the
        # large sets are then probed per sample, as they are in an order read from the start.
        dense = [any(self._dense(member, known) for member in members) for members, _ in groups]
        driven = lead or not all(dense)
        for (members, extra), large in zip(groups, dense, strict=True):
            # PostgreSQL hashes a large set faster than it probes per sample (200,000 samples,
            # undecided: 7 ms as a set, 26 ms probed), so it keeps sets; SQLite builds a
            # B-tree for a set, row by row (1,000,000 samples, drifted: 466 ms vs 5 ms).
            # But beside a search, PostgreSQL's `NOT IN` set kept it scanning every sample
            # for a search's few (1M, undecided + a rare word: 490 ms; NOT EXISTS 62 ms).
            probe = large and (streamed or driven) and (self.dialect != POSTGRESQL or searching)
            parts, group_params = [], []
            for member in members:
                sql, member_params = member.as_probe() if probe else member.as_set()
                parts.append(sql)
                group_params += member_params
            if extra is not None:
                parts.append(extra[0])
                group_params += extra[1]
            where.append("(" + " OR ".join(parts) + ")")
            params += group_params
        if searching is not None:
            where.append(searching[0])
            params += searching[1]
        if also is not None:
            where.append(also[0])
            params += also[1]
        if chunked:
            where.append("s.id IN (SELECT value FROM json_each(?))")
        if not order:
            return f"SELECT s.id FROM samples s WHERE {' AND '.join(where)}", params, driven
        if driven:  # nor the dataset's index: the small set's ids lead, then the sort
            where[0] = "+s.dataset_id = ?"
        columns, join, join_params, order_sql = self._order_sql(q, driven)
        sql = f"SELECT s.id AS id{columns} FROM samples s{join} WHERE {' AND '.join(where)}"
        if columns:  # ordered by a computed column: PostgreSQL orders by its name only outside
            return f"SELECT id FROM ({sql}) AS q{order_sql}", join_params + params, driven
        return sql + order_sql, join_params + params, driven

    def _dense(self, member: Member, known: dict[Member, bool]) -> bool:
        """Whether `member` holds DENSE rows or more (a negated set: leaves that many out);
        counted once per `known`."""
        if member.size is not None:
            return member.size >= DENSE
        if member.negate:
            return True  # "without a row": most samples, in the queues people use
        if member not in known:
            sql, params = member.count_sql()
            known[member] = self.count(sql, params) >= DENSE
        return known[member]

    @staticmethod
    def _order_sql(q: QueueQuery, driven: bool = False) -> tuple[str, str, list[Any], str]:
        """(extra SELECT columns, JOIN clause, their params, ORDER BY clause) for the order.

        A metric order joins one GROUP BY pass over that metric's scores (one row per sample)
        instead of running a subquery per sample: ~0.3 s rather than seconds at 100k samples.
        `driven`: a small set selects the samples, so the order's index must not lead (a `+`
        keeps the planner off it), and a metric is looked up per selected sample instead:
        reading 1,000,000 samples in source order to find the 1,000 flagged ones took 78 ms
        for a window, ranking all of them by IFD change to keep those 1,000 took 2 s.
        """
        if q.sort not in SORT_KEYS:
            raise ReflectionError(
                f"unknown sort {q.sort!r} (expected one of {', '.join(SORT_KEYS)})"
            )
        direction = "DESC" if q.descending else "ASC"
        lead = "+" if driven else ""
        if q.sort == "position" and q.spotcheck is not None:
            # A spot-check's own order is its shuffled draw: the order it was meant to be read.
            join = " JOIN spotcheck_items sp ON sp.sample_id = s.id AND sp.spotcheck_id = ?"
            return "", join, [q.spotcheck], f" ORDER BY sp.rank {direction}"
        if q.sort == "position":
            return "", "", [], f" ORDER BY {lead}s.position {direction}, s.id {direction}"
        if q.sort == "id":
            return "", "", [], f" ORDER BY {lead}s.id {direction}"
        if q.sort == "confidence":
            join = " LEFT JOIN suggestions k ON k.sample_id = s.id"
            # Samples without the value go last whatever the direction.
            order = f" ORDER BY k.confidence IS NULL, k.confidence {direction}, s.id"
            return "", join, [], order
        if not q.sort_metric:
            raise ReflectionError(f"sorting by {q.sort} needs a metric")
        agg = "max" if q.descending else "min"  # the candidate that sorts first
        order = f" ORDER BY k.v IS NULL, k.v {direction}, s.id"
        if driven:
            table, column, version = {
                "change": ("score_changes", f"{agg}(change)", ""),
                "original": ("scores", "max(value)", " AND c.candidate_id = 0"),
                "candidate": ("scores", f"{agg}(value)", " AND c.candidate_id != 0"),
            }[q.sort]
            value = (
                f", (SELECT {column} FROM {table} c WHERE c.sample_id = s.id{version}"
                " AND +c.metric = ?) AS v"
            )
            return value, "", [q.sort_metric], f" ORDER BY v IS NULL, v {direction}, id"
        original = "max(CASE WHEN candidate_id = 0 THEN value END)"
        candidate = f"{agg}(CASE WHEN candidate_id != 0 THEN value END)"
        key = {"original": original, "candidate": candidate}.get(q.sort, "")
        if q.sort == "change":
            # From the derived score_changes (m009): its index holds every value this needs.
            source = f"SELECT sample_id, {agg}(change) AS v FROM score_changes WHERE metric = ?"
        else:
            source = f"SELECT sample_id, {key} AS v FROM scores WHERE metric = ?"
        join = f" LEFT JOIN ({source} GROUP BY sample_id) k ON k.sample_id = s.id"
        return "", join, [q.sort_metric], order
