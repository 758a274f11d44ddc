"""Samples staged for an import: written a chunk at a time, published in one transaction.

The staging table is a TEMP table: it lives in SQLite's temporary file for this connection,
not in the database file, so staging takes no lock on the database and a crash leaves
nothing behind. `publish` moves the rows into `samples` with one INSERT ... SELECT inside
the caller's transaction: an import adds all of its records or none, and holds the write
lock only for that copy. Full-text entries follow in short transactions of their own
(`Store.index_search_backlog`, migration m014).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..records import Sample, content_hash, sample_flags
from .base import dumps, now
from .bulk_counts import counted_in_bulk
from .connection import Connection, typed

_COLUMNS = (
    "position, source, instruction, input, output, system, history, meta, flags, content_hash"
)
# Page cache while publishing: the unique (dataset, content hash) index takes rows in
# random order, and a cache that holds it avoids writing its pages over and over (at a
# million samples, 64 MB halves the publish). About the index's size, within these bounds:
# at 3,000,000 samples a 256 MB cap published in 94 and 90 s where 64 MB took 106 and 101
# (peak RSS 431 MB instead of 200; the memory goal is 1 GB).
PUBLISH_CACHE_KIB = (4 * 1024, 256 * 1024)
INDEX_BYTES_PER_ROW = 100
_names = itertools.count(1)


def temp_write(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """executemany into TEMP tables; in its own deferred transaction unless one is open (a
    deferred transaction that writes only the temporary file takes no lock on the database)."""
    if not rows:
        return
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        conn.executemany(sql, rows)
    except BaseException:
        if own and conn.in_transaction:  # SQLite rolls back by itself on a full disk
            conn.execute("ROLLBACK")
        raise
    if own:
        conn.execute("COMMIT")


def drop_temp(conn: Connection, *tables: str) -> None:
    """Drop TEMP tables. On SQLite, with the temporary database's journal off for the drop
    (outside a transaction only): journalling each freed page made dropping 200,000 staged
    samples take 0.5 s instead of 0.15. Nothing is lost should it fail: the tables were
    being thrown away, and the temporary file goes with the connection."""
    sqlite = getattr(conn, "dialect", "sqlite") == "sqlite" and not conn.in_transaction
    mode = conn.execute("PRAGMA temp.journal_mode").fetchone()[0] if sqlite else None
    if mode is not None:
        conn.execute("PRAGMA temp.journal_mode = OFF")
    try:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        if mode is not None:
            conn.execute(f"PRAGMA temp.journal_mode = {mode}")


def sample_row(sample: Sample) -> tuple[Any, ...]:
    """The staged columns of one sample; sets its content hash."""
    if not sample.content_hash:
        sample.content_hash = content_hash(sample)
    flags = sample_flags(sample)
    if sample.flags:
        flags = sorted(set(sample.flags) | set(flags))
    elif len(flags) > 1:
        flags.sort()
    return (
        sample.position,
        sample.source,
        sample.instruction,
        sample.input,
        sample.output,
        sample.system,
        dumps(sample.history) if sample.history else "[]",
        # Key order kept: export writes extra fields back as the file had them.
        json.dumps(sample.meta, ensure_ascii=False) if sample.meta else "{}",
        dumps(flags) if flags else "[]",
        sample.content_hash,
    )


class Staging:
    """One import's staged samples. Use through `Store.staged_samples()`."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.table = f"temp.staged_samples_{next(_names)}"
        self.count = 0  # samples staged
        self.flagged = 0  # of which with an empty output
        columns = tuple(_COLUMNS.split(", "))
        conn.execute(f"CREATE TABLE {self.table} (seq INTEGER PRIMARY KEY, {typed(columns)})")

    def add(self, samples: Iterable[Sample]) -> int:
        """Stage samples (a chunk of a file); returns how many."""
        rows = [sample_row(sample) for sample in samples]
        self.flagged += sum(1 for row in rows if not row[4].strip())
        temp_write(self.conn, f"INSERT INTO {self.table} ({_COLUMNS}) VALUES"
                              f" ({', '.join('?' * 10)})", rows)  # fmt: skip
        self.count += len(rows)
        return len(rows)

    def publish(self, dataset_id: int, position_base: int = 0) -> tuple[int, int]:
        """Move the staged samples into a dataset, skipping content it already holds:
        (added, skipped). Positions are shifted by `position_base`. Call inside a
        transaction."""
        if not self.conn.in_transaction:
            raise RuntimeError("publish belongs inside a transaction")
        if getattr(self.conn, "dialect", "sqlite") != "sqlite":  # SQLite's page cache only
            return self._insert(dataset_id, position_base)
        (cache,) = self.conn.execute("PRAGMA main.cache_size").fetchone()
        low, high = PUBLISH_CACHE_KIB
        wanted = max(low, min(high, self.count * INDEX_BYTES_PER_ROW // 1024))
        with counted_in_bulk(self.conn, "samples"):
            self.conn.execute(f"PRAGMA main.cache_size = -{wanted}")
            try:
                return self._insert(dataset_id, position_base)
            finally:
                # Before the counts that follow the INSERT: SQLite lets a sort hold as much
                # memory as the page cache may, on top of the page cache (at 1M samples the
                # counts took SQLite from 101 to 133 MB; the import peaked at 612 MB at 10M).
                self.conn.execute(f"PRAGMA main.cache_size = {cache}")

    def _insert(self, dataset_id: int, position_base: int) -> tuple[int, int]:
        cursor = self.conn.execute(
            f"INSERT OR IGNORE INTO samples (dataset_id, {_COLUMNS}, created_at)"
            f" SELECT ?, position + ?, {_COLUMNS.removeprefix('position, ')}, ?"
            f" FROM {self.table} ORDER BY seq",
            [dataset_id, position_base, now()],
        )
        added = cursor.rowcount
        return added, self.count - added

    def drop(self) -> None:
        drop_temp(self.conn, self.table)
