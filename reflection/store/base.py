"""The connection every store mixin shares: pragmas, transactions, row helpers."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from ..errors import StoreError
from .schema import ensure_schema

BUSY_TIMEOUT_MS = 30_000


def now() -> str:
    """UTC time as ISO 8601 with microseconds: sorts as text, unique enough for ordering."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


def json_list(values: Iterable[Any]) -> str:
    """Values as one parameter for `IN (SELECT value FROM json_each(?))`: any number of them
    in one statement, where a placeholder per value would hit SQLite's variable limit."""
    return json.dumps(list(values))


def to_db_candidate(candidate_id: int | None) -> int:
    """The original is stored as candidate 0 so it can take part in unique keys."""
    return candidate_id or 0


def from_db_candidate(value: int | None) -> int | None:
    return value or None


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT on this cursor just added."""
    if cursor.lastrowid is None:  # only when the cursor never inserted a row
        raise StoreError("the database did not report the id of the row it inserted")
    return cursor.lastrowid


class StoreBase:
    """Owns the SQLite connection. One Store per thread, or pass check_same_thread deliberately."""

    def __init__(self, path: str | Path, *, check_same_thread: bool = True):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a database file")
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"{self.path}: folder {self.path.parent} does not exist")
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the
            # write lock up front and waits on busy_timeout instead of failing on lock upgrade.
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=check_same_thread,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            ensure_schema(self.db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: cannot open as a Reflection Studio database ({exc})"
            ) from exc

    def close(self) -> None:
        self.db.close()

    def is_blank(self) -> bool:
        """Whether the database holds nothing but its schema: no row in any table (bookkeeping
        aside: the migrations applied, how far the search index goes)."""
        names = [
            row[0]
            for row in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
                " AND name NOT IN ('_migrations', 'search_backlog')"
                " AND name NOT LIKE '%\\_fts\\_%' ESCAPE '\\'"
            )
        ]
        return not any(
            self.conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() for name in names
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing. Nested calls become savepoints of the outer transaction."""
        if self.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def query_one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def count(self, sql: str, params: Any = ()) -> int:
        """The value of a `SELECT count(...)` query (which always returns one row)."""
        value: int = self.conn.execute(sql, params).fetchone()[0]
        return value

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None
