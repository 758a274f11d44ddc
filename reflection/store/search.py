"""The full-text indexes of samples and candidates, built behind bulk writes.

An import publishes its rows in one transaction without their full-text entries (at a
million samples, indexing takes longer than everything else an import does); the entries
are added after, a chunk per transaction, so other writers wait seconds, not minutes, and a
crash loses nothing: the next call carries on from `search_backlog.indexed_upto` (ids only
grow). Searches read the rows above that id directly, so they are complete at every moment.
Small writes (a reply, an edit) index their rows at once, in their own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..progress import Progress
from .base import StoreBase
from .connection import POSTGRESQL, Connection
from .postgres import SEARCH_PROBE, SEARCH_SET, tsquery
from .search_terms import TOKEN, expanded

INDEX_CHUNK = 50_000  # rows indexed per transaction (a few seconds each)
TABLES = ("samples", "candidates")


def fts_query(text: str, prefix: bool = True) -> str:
    """User words as an FTS5 query: every token must occur (as a prefix, or with `prefix`
    False as a whole word), operators inert.

    Tokens as the index's tokenizer cuts them (runs of letters and digits), each its own
    term: the index keeps no positions (m021), so a word such as "don't" asks for "don" and
    "t" anywhere in the row rather than for the phrase."""
    star = "*" if prefix else ""
    return " ".join(f'"{token}"{star}' for token in TOKEN.findall(text))


def like_all(text: str) -> tuple[str, list[str]]:
    """Every word somewhere in a sample's text, as LIKE (for samples not indexed yet)."""
    parts, params = [], []
    for word in (w.strip('"') for w in text.split()):
        if word:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            parts.append(
                "(instruction LIKE ? ESCAPE '\\' OR input LIKE ? ESCAPE '\\'"
                " OR output LIKE ? ESCAPE '\\')"
            )
            params += [pattern] * 3
    return " AND ".join(parts) or "0", params


def search_condition(dialect: str, text: str) -> tuple[str, list[Any]] | None:
    """The review queue's search as a condition on a sample `s` (its text or a candidate's
    holds every word), with its params; None when `text` has no word."""
    found = search_set(dialect, text)
    return None if found is None else (f"s.id IN ({found[0]})", found[1])


def search_set(dialect: str, text: str) -> tuple[str, list[Any]] | None:
    """The ids of the samples a search matches, as SQL with its params; None when `text`
    has no word."""
    if dialect == POSTGRESQL:
        match = tsquery(text)
        return (SEARCH_SET, [match, match]) if match else None
    match = fts_query(text)
    if not match:
        return None
    # One UNIONed id set (not two ORed ones): half the time at 100k samples. Samples an
    # import published but has not indexed yet are read directly.
    like, like_params = like_all(text)
    return (
        "SELECT rowid FROM samples_fts WHERE samples_fts MATCH ?"
        " UNION SELECT c.sample_id FROM candidates c WHERE c.id IN"
        " (SELECT rowid FROM candidates_fts WHERE candidates_fts MATCH ?)"
        " UNION SELECT id FROM samples WHERE id >"
        f" (SELECT indexed_upto FROM search_backlog WHERE name = 'samples') AND {like}"
        " UNION SELECT sample_id FROM candidates WHERE id >"
        f" (SELECT indexed_upto FROM search_backlog WHERE name = 'candidates') AND {like}",
        [match, match, *like_params, *like_params],
    )


def search_set_is_small(conn: Connection, text: str, small: int) -> bool:
    """Whether a search matches fewer than `small` samples (counting no further): then its
    set should lead the queue's query, which otherwise reads the dataset in source order to
    the end looking for the few (10,000,000 samples, a word in none: 0.7 s)."""
    found = search_set(getattr(conn, "dialect", "sqlite"), text)
    if found is None:
        return False
    sql, params = found
    count = conn.execute(f"SELECT count(*) FROM ({sql} LIMIT {int(small)}) AS capped", params)
    return bool(count.fetchone()[0] < small)


# SQLite: which of the walked samples (a JSON list, in queue order) match, the window's
# worth. Each index is asked once, for the rowid range the walk spans: the samples', and that
# of the walked samples' candidates (`_CANDIDATE_RANGE`). Params: walked ids, match, lowest
# and highest candidate id, match, lowest and highest sample id, limit.
_WALK_PROBE = (
    "WITH w AS MATERIALIZED (SELECT key AS n, value AS id FROM json_each(?)),"
    " cm AS MATERIALIZED (SELECT c.sample_id AS id FROM candidates c WHERE c.id IN"
    " (SELECT rowid FROM candidates_fts WHERE candidates_fts MATCH ? AND rowid BETWEEN ? AND ?)),"
    " sm AS MATERIALIZED (SELECT rowid AS id FROM samples_fts WHERE samples_fts MATCH ?"
    " AND rowid BETWEEN ? AND ?)"
    " SELECT w.id FROM w WHERE w.id IN (SELECT id FROM sm) OR w.id IN (SELECT id FROM cm)"
    " ORDER BY w.n LIMIT ?"
)
_CANDIDATE_RANGE = (
    "SELECT min(c.id), max(c.id) FROM candidates c"
    " WHERE c.sample_id IN (SELECT value FROM json_each(?))"
)
# Up to `n` rows of an index in a rowid range that hold the words (whole words, or prefixes
# spelt out as words): FTS5 reads such lists from where the range starts, in well under a
# millisecond.
_IN_RANGE = (
    "SELECT count(*) FROM (SELECT 1 FROM {table}_fts WHERE {table}_fts MATCH ?"
    " AND rowid BETWEEN ? AND ? LIMIT ?)"
)
# Rows written since the last indexing, which only the search's set reads (by LIKE).
_BACKLOG = " OR ".join(
    f"EXISTS (SELECT 1 FROM {table} WHERE id >"
    f" (SELECT indexed_upto FROM search_backlog WHERE name = '{table}'))"
    for table in ("samples", "candidates")
)


def probed_search(
    conn: Connection, walk_sql: str, params: Sequence[Any], text: str, limit: int, walk: int
) -> list[int] | None:
    """A search in queue order, tried on the first `walk` samples of the queue without it
    (`walk_sql`, in its order): the first `limit` of them that match, or None unless that
    fills the window (the caller then builds the search's set).

    A common word fills the window within a few thousand samples, where its set would hold
    hundreds of thousands. At 1,000,000 samples: on PostgreSQL "the" 3 ms and "explain"
    17 ms (their sets took 2.4 s and 1.7 s); on SQLite "explain" 90 ms and "water" 59 ms
    (their sets 401 and 210 ms: mapping every matching candidate to its sample). A rare word
    costs the walk first (SQLite ~10 ms, which counts whole words before it asks for
    prefixes), then its small set. PostgreSQL skips the walk (40-70 ms at 1M) where its
    planner expects the word too rare to fill half a window in it (`_sparse`)."""
    dialect = getattr(conn, "dialect", "sqlite")
    if dialect == POSTGRESQL:
        match = tsquery(text)
        if not match or _sparse(conn, match, limit, walk):
            return None
        rows = conn.execute(
            f"SELECT s.id FROM ({walk_sql} LIMIT {walk}) AS s WHERE {SEARCH_PROBE} LIMIT {limit}",
            [*params, match, match],
        ).fetchall()
    else:
        match = fts_query(text)
        if not match or conn.execute(f"SELECT {_BACKLOG}").fetchone()[0]:
            return None
        ids = [row[0] for row in conn.execute(f"{walk_sql} LIMIT {walk}", params)]
        if not ids:
            return None
        walked, low, high = json.dumps(ids), min(ids), max(ids)
        first, last = conn.execute(_CANDIDATE_RANGE, [walked]).fetchone()
        # Asking for a word's prefix makes FTS5 merge the lists of every word it begins (all
        # of them, whatever the range): ~60 ms for "explain" at 1M. Each prefix is spelt out
        # as those words instead where it can be (`search_terms.expanded`), else whole words
        # stand in for counting. Up to half a window's matches are counted in the walk's
        # ranges first, so that a walk holding few goes to the set at once, paying nothing
        # more.
        whole, need = fts_query(text, prefix=False), max(1, limit // 2)
        spelt = {table: expanded(conn, table, text) for table in TABLES}
        found = sum(
            conn.execute(
                _IN_RANGE.format(table=table), [spelt[table] or whole, a, b, need]
            ).fetchone()[0]
            for table, a, b in (("samples", low, high), ("candidates", first, last))
        )
        if found < need:
            return None
        rows = conn.execute(
            _WALK_PROBE,
            [walked, spelt["candidates"] or match, first, last, spelt["samples"] or match,
             low, high, limit],
        ).fetchall()  # fmt: skip
    return [row[0] for row in rows] if len(rows) == limit else None


def _sparse(conn: Connection, match: str, limit: int, walk: int) -> bool:
    """PostgreSQL: whether the planner expects the rows holding `match` (samples' and
    candidates', an upper bound of the samples) to be too few for a walk of `walk` samples
    to meet half of `limit`: its estimates, from the GIN index's statistics, cost under a
    millisecond each (a rare word and an absent one both come out at its floor, 0.5 %)."""
    rows = 0.0
    for table in ("samples_fts_vectors", "candidates_fts_vectors"):
        plan = conn.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE vec @@ to_tsquery('simple', ?)",
            [match],
        ).fetchone()[0]
        rows += float(plan[0]["Plan"]["Plan Rows"])
    total = conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'samples_fts_vectors'::regclass"
    ).fetchone()[0]
    return bool(total and total > 0 and rows * walk < total * limit / 2)


# The bounded search's id span, in samples, at most: past it the set of a word that rare is
# small enough to build whole (`search_condition`), and the check of the order costs more.
BOUNDED_SPAN = 400_000


def bounded_search(
    conn: Connection,
    dataset_id: int,
    text: str,
    limit: int,
    run: Callable[[tuple[str, list[Any]]], list[int]],
) -> list[int] | None:
    """A search in source order for a word too sparse for the walk to fill a window (one
    sample in 200, say) but too common for its set to be cheap (at 10,000,000 samples,
    mapping 100,000 matching candidates to their samples took 140 ms): the set of the
    samples from the dataset's first up to an id bound, then a check that the bound cut
    nothing off. SQLite only; None where it does not apply or does not fill the window.

    Samples take ids in the order they are imported, which is their source order too, so the
    window's samples usually lie between the first id and the `limit`-th sample whose own
    text matches (those all match). The set within those ids is cheap to build: each index
    is asked for a rowid range (the samples', and the span of those samples' candidates).
    `run` runs the queue with one more condition and returns its first `limit` ids; the
    result stands only if no sample of the dataset up to the last one's position lies
    outside the ids searched (otherwise the caller builds the whole set)."""
    if not fts_query(text) or conn.execute(f"SELECT {_BACKLOG}").fetchone()[0]:
        return None
    first = conn.execute(
        "SELECT id FROM samples WHERE dataset_id = ? ORDER BY position, id LIMIT 1", [dataset_id]
    ).fetchone()
    if first is None:
        return None
    low = first[0]
    spelt = {table: expanded(conn, table, text) or fts_query(text) for table in TABLES}
    row = conn.execute(
        "SELECT rowid FROM samples_fts WHERE samples_fts MATCH ? AND rowid >= ?"
        " ORDER BY rowid LIMIT 1 OFFSET ?",
        [spelt["samples"], low, limit - 1],
    ).fetchone()
    if row is None or row[0] - low > BOUNDED_SPAN:
        return None
    high, reach = row[0], _CandidateReach(conn, low)
    while True:
        found = run(_bounded_set(spelt, low, high, reach.upto(high)))
        if len(found) == limit:
            break
        if high - low >= BOUNDED_SPAN:  # the filters leave too few matches in reach
            return None
        # Wide enough for the window at the rate the filters let matches through, and some.
        grow = 4.0 if not found else min(4.0, 1.25 * limit / len(found))
        high = low + min(BOUNDED_SPAN, int(grow * (high - low + 1)))
    # Samples without a position come first, by id: from `low` (the first of them, if any)
    # to the window's last they are in reach. Those before a last with a position are all
    # that have none, and those with a position up to its.
    last = conn.execute("SELECT position FROM samples WHERE id = ?", [found[-1]]).fetchone()[0]
    if last is None:
        return found
    outside = "dataset_id = ? AND {} AND (id < ? OR id > ?)"
    cut = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM samples WHERE {outside.format('position IS NULL')})"
        f" OR EXISTS (SELECT 1 FROM samples WHERE {outside.format('position <= ?')})",
        [dataset_id, low, high, dataset_id, last, low, high],
    ).fetchone()[0]
    return None if cut else found


class _CandidateReach:
    """The span of candidate ids of the samples from `low` up to a bound, widened as the
    bound grows: each sample's candidates are read once (a walk of the candidates' sample
    index, ~0.2 µs an entry)."""

    def __init__(self, conn: Connection, low: int):
        self.conn, self.done, self.first, self.last = conn, low - 1, None, None

    def upto(self, high: int) -> tuple[int, int]:
        if high > self.done:
            first, last = self.conn.execute(
                "SELECT min(id), max(id) FROM candidates WHERE sample_id BETWEEN ? AND ?",
                [self.done + 1, high],
            ).fetchone()
            if first is not None:
                self.first = first if self.first is None else min(self.first, first)
                self.last = last if self.last is None else max(self.last, last)
            self.done = high
        return (self.first or 0, self.last or 0)


def _bounded_set(
    spelt: dict[str, str], low: int, high: int, candidates: tuple[int, int]
) -> tuple[str, list[Any]]:
    """The samples with ids in [low, high] whose text or a candidate's matches (`spelt`: each
    index's query; `candidates`: the span of those samples' candidate ids), as a condition on
    `s` with its params."""
    return (
        "s.id IN (SELECT rowid FROM samples_fts WHERE samples_fts MATCH ? AND rowid BETWEEN ? AND ?"
        " UNION SELECT c.sample_id FROM candidates c WHERE c.id IN (SELECT rowid"
        " FROM candidates_fts WHERE candidates_fts MATCH ? AND rowid BETWEEN ? AND ?)"
        " AND c.sample_id BETWEEN ? AND ?)",
        [spelt["samples"], low, high, spelt["candidates"], *candidates, low, high],
    )


class SearchIndexStore(StoreBase):
    def search_backlog(self, table: str = "samples") -> int:
        """How many rows of `table` are not in its full-text index yet."""
        if self.dialect == POSTGRESQL:  # its GIN indexes follow every write
            return 0
        return self.count(
            f"SELECT count(*) FROM {_checked(table)} WHERE id >"
            " (SELECT indexed_upto FROM search_backlog WHERE name = ?)",
            [table],
        )

    def index_search_backlog_told(self, progress: Progress) -> int:
        """`index_search_backlog` of both tables, telling `progress` ("index", rows done, at
        most how many: the largest id less the indexed mark, since counting the rows would
        read every new one, gigabytes after an import of millions)."""
        total = 0
        if self.dialect != POSTGRESQL:
            spans = " + ".join(
                f"max(0, (SELECT coalesce(max(id), 0) FROM {table})"
                f" - (SELECT indexed_upto FROM search_backlog WHERE name = '{table}'))"
                for table in TABLES
            )
            total = int(self.scalar(f"SELECT {spans}"))
        return self.index_search_backlog(progress=lambda done: progress("index", done, total))

    def index_search_backlog(
        self,
        table: str | None = None,
        *,
        chunk: int = INDEX_CHUNK,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Add every row not yet in the full-text index of `table` (default: both), a chunk
        per transaction; returns how many. Safe from several processes at once: each chunk is
        claimed under the write lock."""
        if self.dialect == POSTGRESQL:  # its GIN indexes follow every write: no backlog
            return 0
        done = 0
        for name in (table,) if table else TABLES:
            _checked(name)
            while True:
                with self.transaction():
                    upto = self.scalar(
                        "SELECT indexed_upto FROM search_backlog WHERE name = ?", [name]
                    )
                    end = self.scalar(
                        f"SELECT max(id) FROM (SELECT id FROM {name} WHERE id > ?"
                        " ORDER BY id LIMIT ?)",
                        [upto, chunk],
                    )
                    if end is None:
                        break
                    cursor = self.conn.execute(
                        f"INSERT INTO {name}_fts (rowid, instruction, input, output)"
                        f" SELECT id, instruction, input, output FROM {name}"
                        " WHERE id > ? AND id <= ?",
                        [upto, end],
                    )
                    self.conn.execute(
                        "UPDATE search_backlog SET indexed_upto = ? WHERE name = ?", [end, name]
                    )
                done += cursor.rowcount
                if progress is not None:
                    progress(done)
        return done


def _checked(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"no full-text index for {table!r}")
    return table
