"""One bulk INSERT counted at once instead of row by row (SQLite).

The store's counts (m018's tallies, m020's kept flags) follow every write through row
triggers on SQLite: right for a decision or a reply, but a publish of 200,000 imported rows
ran each trigger 200,000 times (a third of an import's publish; half of an import of
candidates'). `counted_in_bulk` drops a table's AFTER INSERT count triggers for the length
of one statement, inside the caller's transaction, then adds what they would have added,
from the same definitions the triggers are made of, and creates them again from their own
SQL. No other writer can see them gone (SQLite has one writer, and the DDL commits with the
rows), and a rollback restores them. PostgreSQL's count triggers are statement triggers
already: there it does nothing.

The rows a statement added are those past the table's largest id before it: ids of INTEGER
PRIMARY KEY tables without AUTOINCREMENT grow from the largest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from .connection import Connection
from .schema_acceptance import CANDIDATES_INSERT_TRIGGER, bulk_count_sql
from .schema_flags import KEPT_FLAGS, KeptFlag
from .schema_tallies import COUNTED

BULK_TABLES = ("samples", "candidates")


@contextlib.contextmanager
def row_triggers_off(conn: Connection, names: Sequence[str]) -> Iterator[list[str]]:
    """Drop the named SQLite triggers for the block and create them again from their own SQL,
    inside the caller's transaction; yields the names of those there were (a store opened at
    an older migration may lack some)."""
    marks = ", ".join("?" * len(names))
    kept = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",
        list(names),
    ).fetchall()
    for name, _ in kept:
        conn.execute(f"DROP TRIGGER {name}")
    try:
        yield [name for name, _ in kept]
    except BaseException:
        # A full disk or Ctrl-C (SQLITE_INTERRUPT) can make SQLite roll the transaction back
        # itself, and the drops with it: the triggers are there again, and the caller's
        # error is the one to see.
        if conn.in_transaction:
            for _, sql in kept:
                conn.execute(sql)
        raise
    for _, sql in kept:
        conn.execute(sql)


def _flags(table: str) -> list[tuple[str, KeptFlag]]:
    """(trigger name, flag) of each kept flag counted on `table`'s inserts (m020's names)."""
    return [
        (f"{table}_flag{number}_insert", flag)
        for number, flag in enumerate(KEPT_FLAGS)
        if flag.table == table
    ]


@contextlib.contextmanager
def counted_in_bulk(conn: Connection, table: str) -> Iterator[None]:
    """Run the block's INSERTs into `table` without its row count triggers, then count the
    added rows at once. SQLite only; call inside a transaction."""
    if table not in BULK_TABLES:
        raise ValueError(f"no bulk counting for {table!r}")
    if getattr(conn, "dialect", "sqlite") != "sqlite":
        yield
        return
    if not conn.in_transaction:
        raise RuntimeError("counted_in_bulk belongs inside a transaction")
    (before,) = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
    flags = _flags(table)
    accepted = [CANDIDATES_INSERT_TRIGGER] if table == "candidates" else []
    names = [f"{table}_tally_insert", *(name for name, _ in flags), *accepted]
    with row_triggers_off(conn, names) as off:
        yield
    (after,) = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
    counts = list(_count_sql(table, flags, by_index=(after - before) * INDEX_SHARE >= after))
    if accepted:
        # The decided samples are usually far fewer than the rows of an import.
        (decided,) = conn.execute("SELECT count(*) FROM sample_state").fetchone()
        counts.append((CANDIDATES_INSERT_TRIGGER, bulk_count_sql(after - before >= decided)))
    for name, sql in counts:
        if name in off:
            conn.execute(sql, [before] * sql.count("?"))


# The added rows are read through a covering index instead of the table when they are at
# least 1/INDEX_SHARE of its ids: an index entry is ~40 bytes, an imported row ~1 KB with its
# texts. At 1,000,000 candidates added to an empty table, the four counts took 5.0 s.
INDEX_SHARE = 16


def _count_sql(
    table: str, flags: list[tuple[str, KeptFlag]], by_index: bool = False
) -> Iterator[tuple[str, str]]:
    """(trigger, SQL adding what it would have added for the rows past the largest id before
    them). `by_index`: the id range is a filter, not a way in (`+r.id`), so the planner scans
    the smallest index holding the columns counted rather than the rows with their texts."""
    past = "+r.id > ?" if by_index else "r.id > ?"
    for counted, name, dataset, join, where in COUNTED:
        if counted == table:
            condition = where.replace(" WHERE ", " AND ")
            # A constant name left out of the GROUP BY: SQLite then reads the samples in
            # their (dataset, position) index's order and sorts nothing (with it, every row
            # went through a sort, ~300 MB of memory at 10M samples).
            group = "1" if name.startswith("'") else "1, 2"
            yield (
                f"{table}_tally_insert",
                _add(
                    f"SELECT {dataset} AS dataset_id, {name} AS name, count(*) AS n"
                    f" FROM {table} r{join} WHERE {past}{condition} GROUP BY {group}"
                ),
            )
    for trigger, flag in flags:
        # Row by row, the first new row that raises the flag on a sample counts it, unless a
        # row from before already did; later rows see the first. So: each sample with a new
        # row raising the flag and no old one, once.
        yield (
            trigger,
            _add(
                f"SELECT s.dataset_id AS dataset_id, '{flag.name}' AS name, count(*) AS n"
                f" FROM samples s WHERE s.id IN (SELECT r.sample_id FROM {table} r"
                f" WHERE {past} AND {flag.condition('r')}) AND NOT EXISTS"
                f" (SELECT 1 FROM {table} x WHERE x.sample_id = s.id AND x.id <= ?"
                f" AND {flag.condition('x')}) GROUP BY 1, 2"
            ),
        )


def _add(counts: str) -> str:
    """Add the (dataset_id, name, n) rows of `counts` to their tallies (which every dataset
    has, zero or not)."""
    return (
        f"UPDATE tallies SET n = tallies.n + d.n FROM ({counts}) AS d"
        " WHERE tallies.dataset_id = d.dataset_id AND tallies.name = d.name"
    )
