"""Copy a whole store to another database, SQLite or PostgreSQL, either way, losslessly.

`copy_store(source, destination)` copies every table row for row, ids included, in one
transaction on the destination (all or nothing), then proves it: each table's row count and
content digest are computed on both sides, and they must be equal.

The digest is order-independent: the sum, modulo 2**256, of the SHA-256 of each row's values
as canonical JSON. The two databases need not return rows in the same order (their text
collations differ), and it streams in constant memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError
from .base import StoreBase
from .connection import POSTGRESQL, SQLITE
from .postgres import PgConnection
from .schema_search import VECTOR_TABLES, fill_search_vectors
from .tallies import TallyStore

# Every table, parents before children (foreign keys hold at each insert). Derived tables
# (sample_state, reviewer_state, score_changes) are copied as they are, not rebuilt.
TABLES = (
    "datasets", "samples", "runs", "background_jobs", "candidates", "scores", "score_changes",
    "reviews", "sample_state", "suggestions", "oracle_cache", "spotchecks", "spotcheck_items",
    "audit", "accounts", "signin_failures", "sessions", "assignments", "reviewer_state",
    "review_origins",
)  # fmt: skip
CHUNK = 5_000
_MODULUS = 2**256


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    destination_rows: int
    source_digest: str
    destination_digest: str

    @property
    def equal(self) -> bool:
        return (self.source_rows, self.source_digest) == (
            self.destination_rows,
            self.destination_digest,
        )


def table_names(store: StoreBase) -> set[str]:
    """The store's own tables (not its bookkeeping: the migrations applied, how far the
    search index goes and the counts its triggers keep, which the destination keeps for
    itself as the rows arrive; not SQLite's FTS tables)."""
    if store.dialect == POSTGRESQL:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema ="
            " current_schema() AND table_type = 'BASE TABLE'"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
    names = {row[0] for row in store.conn.execute(sql)}
    own = ("_migrations", "search_backlog", "tallies", "tally_deltas")
    return {n for n in names if n not in own and "_fts" not in n}


def columns(store: StoreBase, table: str) -> list[str]:
    cursor = store.conn.execute(f'SELECT * FROM "{table}" LIMIT 0')
    return [d[0] for d in cursor.description]


def _rows(store: StoreBase, table: str, names: list[str]) -> Iterator[Any]:
    """Every row of a table, read in batches: constant memory whatever its size."""
    listed = ", ".join(f'"{n}"' for n in names)
    sql = f'SELECT {listed} FROM "{table}"'
    yield from store.stream(sql, size=CHUNK)[1]


def digest(store: StoreBase, table: str, names: list[str]) -> tuple[int, str]:
    """(rows, digest) of one table, over the named columns."""
    total = count = 0
    for row in _rows(store, table, names):
        text = json.dumps(list(row), ensure_ascii=False, separators=(",", ":"))
        total = (total + int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")) % _MODULUS
        count += 1
    return count, f"{total:064x}"


def _check_tables(source: StoreBase, destination: StoreBase) -> None:
    for store in (source, destination):
        found = table_names(store)
        if found != set(TABLES):
            missing, extra = sorted(set(TABLES) - found), sorted(found - set(TABLES))
            raise StoreError(
                f"{store.path}: tables differ from what this version copies"
                f" (missing {missing}, unknown {extra}); upgrade Reflection Studio"
            )


def copy_store(
    source: StoreBase,
    destination: TallyStore,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> list[TableCheck]:
    """Copy every row of `source` into the blank `destination`, then check each table."""
    if not destination.is_blank():
        raise StoreError(f"{destination.path}: not empty; copy only into a new database")
    _check_tables(source, destination)
    postgres = destination.dialect == POSTGRESQL
    with destination.transaction():
        if postgres:
            # The kept counts' triggers would work through every copied row (a statement-level
            # trigger per table, probing each new score: 400 s of 480 for 100,000 samples);
            # off while copying, and the counts made once from the rows at the end instead.
            for table in TABLES:
                destination.conn.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
            indexes = _drop_indexes(destination)
        for table in TABLES:
            names = columns(source, table)
            copied = _copy_table(source, destination, table, names, progress)
            if progress:
                progress(table, copied)
        _after_copy(destination)
        if postgres:
            for table in TABLES:
                destination.conn.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
            destination.conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for definition in indexes:
                destination.conn.execute(definition)
            destination.set_tallies_to_counts()
    if postgres:
        # Planner statistics now, not when autovacuum gets to it: until then the queue's
        # queries on a freshly copied store run several times slower.
        destination.conn.execute("ANALYZE")
    return [check_table(source, destination, table) for table in TABLES]


def _drop_indexes(store: StoreBase) -> list[str]:
    """Drop the PostgreSQL indexes no constraint needs (search, queue and dashboard indexes)
    and return their definitions: built once over the copied rows, the full-text GIN indexes
    above all, they take a fraction of the time that upkeep row by row does."""
    vectors = [f"{table}_fts_vectors" for table in VECTOR_TABLES]
    tables = ", ".join(f"'{table}'" for table in (*TABLES, *vectors))
    rows = store.conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname"
        " AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))"
        f" AND i.tablename IN ({tables}) ORDER BY i.indexname"
    ).fetchall()
    for name, _ in rows:
        store.conn.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def _copy_table(
    source: StoreBase,
    destination: StoreBase,
    table: str,
    names: list[str],
    progress: Callable[[str, int], None] | None,
) -> int:
    """One table's rows into the destination: COPY on PostgreSQL, batched INSERTs on SQLite."""
    rows = _rows(source, table, names)
    if isinstance(destination.conn, PgConnection):

        def counted() -> Iterator[Any]:
            for n, row in enumerate(rows, 1):
                yield row
                if progress and n % CHUNK == 0:
                    progress(table, n)

        return destination.conn.copy_in(table, names, counted())
    listed = ", ".join(f'"{n}"' for n in names)
    sql = f'INSERT INTO "{table}" ({listed}) VALUES ({", ".join("?" * len(names))})'
    copied = 0
    batch: list[list[Any]] = []
    for row in rows:
        batch.append(list(row))
        if len(batch) >= CHUNK:
            destination.conn.executemany(sql, batch)
            copied += len(batch)
            batch.clear()
            if progress:
                progress(table, copied)
    if batch:
        destination.conn.executemany(sql, batch)
        copied += len(batch)
    return copied


def check_table(source: StoreBase, destination: StoreBase, table: str) -> TableCheck:
    names = columns(source, table)
    rows_a, digest_a = digest(source, table, names)
    rows_b, digest_b = digest(destination, table, names)
    return TableCheck(table, rows_a, rows_b, digest_a, digest_b)


def _after_copy(store: StoreBase) -> None:
    """What explicit ids and bulk inserts leave to do: identity counters past the copied ids
    (PostgreSQL), full-text indexes of the copied text (SQLite's FTS5 tables)."""
    if store.dialect == SQLITE:
        for table in ("samples", "candidates"):
            store.conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')")
            store.conn.execute(
                f"UPDATE search_backlog SET indexed_upto = (SELECT coalesce(max(id), 0)"
                f" FROM {table}) WHERE name = ?",
                [table],
            )
        return
    fill_search_vectors(store.conn)  # their triggers were off
    for table in TABLES:
        if "id" in columns(store, table):
            store.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
