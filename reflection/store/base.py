"""The connection every store mixin shares: pragmas, transactions, row helpers."""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import orjson

from ..config import db_key, is_db_url
from ..errors import StoreError, is_disk_full, size_label
from .connection import POSTGRESQL, SQLITE, Connection, Cursor
from .postgres import PgConnection, integrity_errors
from .schema import ensure_schema


class _Dropped(Protocol):
    def drop(self) -> None: ...


_Temp = TypeVar("_Temp", bound=_Dropped)

BUSY_TIMEOUT_MS = 30_000
# The WAL file is cut back to this size once a checkpoint has emptied it. SQLite otherwise
# keeps the file at the largest size it ever reached: a 10M-sample import leaves a 10-15 GB
# WAL beside the database for good, disk no one gets back.
WAL_KEEP_BYTES = 64 << 20


def now() -> str:
    """UTC time as ISO 8601 with microseconds: sorts as text, unique enough for ordering."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


# Shared buffers under a quarter of the database, and under this, are worth a word to the
# server's admin (PostgreSQL's own guidance: a quarter of the machine's memory).
ADVISE_BUFFERS_BELOW = 2 << 30


def memory_advice_for(shared_bytes: int, database_bytes: int) -> str | None:
    """What to tell the admin of a PostgreSQL server with `shared_bytes` of shared buffers
    holding a database of `database_bytes`; None when the buffers are large enough."""
    if shared_bytes >= min(database_bytes // 4, ADVISE_BUFFERS_BELOW):
        return None
    return (
        f"PostgreSQL's shared_buffers is {size_label(shared_bytes)} for a"
        f" {size_label(database_bytes)} database: searches and filters read their pages from"
        " the operating system again on every run (at a million samples a search took 3"
        " times as long with the default 128 MB). Set shared_buffers to a quarter of the"
        " server's memory in postgresql.conf and restart PostgreSQL."
    )


# json.dumps builds an encoder per call when given options: one, built once, writes the same.
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def dumps(value: Any) -> str:
    if not value and isinstance(value, dict | list):  # most params, meta, flags: no encoder
        return "{}" if isinstance(value, dict) else "[]"
    return _ENCODE(value)


def dumps_compact(value: Any) -> str:
    """`dumps` without the spaces after separators, through orjson (4 x faster) for what it
    writes as the stdlib would: a dict or list of texts, integers and booleans (a candidate's
    origin, on import's hot path). Anything else (a float, a key not a text, an integer past
    64 bits, a lone surrogate) takes the stdlib with the same separators."""
    if not value and isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    try:
        if not _needs_stdlib(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    return _COMPACT(value)


_COMPACT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


_PLAIN = frozenset((str, int, bool, type(None)))


def _needs_stdlib(value: Any) -> bool:
    """Whether `value` holds a float (orjson writes 1e-07 as 1e-7 and NaN as null) or a type
    other than dict, list, tuple, text, integer, boolean and None, anywhere."""
    kind = type(value)
    if kind in _PLAIN:
        return False
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        return kind is float or not isinstance(value, str | int)  # other types: the stdlib
    for item in value:  # noqa: SIM110 (a loop: any() over a generator is twice as slow here)
        if type(item) not in _PLAIN and _needs_stdlib(item):
            return True
    return False


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    if text == "{}":  # the usual empty meta, params, detail: no decoder (import's hot path)
        return {}
    if text == "[]":
        return []
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


def inserted_id(cursor: Cursor) -> int:
    """The id an `INSERT ... RETURNING id` on this cursor just added."""
    rows = cursor.fetchall()  # all of them: SQLite finishes the INSERT as its rows are read
    row = rows[0] if rows else None
    if row is None:  # only when the statement inserted nothing
        raise StoreError("the database did not report the id of the row it inserted")
    return int(row[0])


# A UNIQUE or foreign key violation, whichever database raised it.
INTEGRITY_ERRORS: tuple[type[BaseException], ...] = (sqlite3.IntegrityError, *integrity_errors())
_savepoints = itertools.count(1)
# Python runs a signal's handler only between its own bytecodes, so Ctrl-C waited for a long
# statement to end: minutes for the publish of a ten-million-record import. SQLite calls
# this every SIGNAL_STEPS virtual-machine steps (about a millisecond); Ctrl-C's
# KeyboardInterrupt is raised in it, and sqlite3 stops the statement with SQLITE_INTERRUPT
# (`errors.is_interrupted`). The transaction rolls back as for any error.
SIGNAL_STEPS = 100_000


def _let_signals_in() -> int:
    return 0  # go on


class StoreBase:
    """Owns the connection: a SQLite file, or PostgreSQL given a `postgresql://` URL.

    One Store per thread, or pass check_same_thread deliberately (SQLite).
    """

    dialect = SQLITE
    path: Path | str  # the SQLite file, or PostgreSQL's URL without its password

    def __init__(self, path: str | Path, *, check_same_thread: bool = True):
        self.target = db_key(path)  # what opens it again (a URL keeps its password here only)
        if is_db_url(path):
            self._open_postgres(str(path))
            return
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a database file")
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"{self.path}: folder {self.path.parent} does not exist")
        self._check_same_thread = check_same_thread
        try:
            self._conn: Connection = self._connect_sqlite()
            ensure_schema(self._conn, SQLITE)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: cannot open as a Reflection Studio database ({exc})"
            ) from exc

    def _connect_sqlite(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the
        # write lock up front and waits on busy_timeout instead of failing on lock upgrade.
        conn = sqlite3.connect(
            str(self.path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=self._check_same_thread,
        )
        # Before any TEMP table: dropping one (an import's staging) gives its space back to
        # the disk at once, not when the connection closes (staging 200,000 samples: 0.75 s
        # either way). Its file is unlinked as it is made, so no one could see what held it.
        conn.execute("PRAGMA temp.auto_vacuum = FULL")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.set_progress_handler(_let_signals_in, SIGNAL_STEPS)
        return conn

    def _open_postgres(self, url: str) -> None:
        conn = PgConnection(url)
        self.dialect = POSTGRESQL
        self.path = conn.url  # the URL without its password: a label for messages and caches
        self._conn = conn
        try:
            ensure_schema(conn, POSTGRESQL)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def memory_advice(self) -> str | None:
        """For the admin of a PostgreSQL server whose shared buffers are small for this
        database (`memory_advice_for`): a line saying so and what to set; None on SQLite."""
        if self.dialect != POSTGRESQL:
            return None
        shared, size = self.conn.execute(
            "SELECT pg_size_bytes(current_setting('shared_buffers')),"
            " pg_database_size(current_database())"
        ).fetchone()
        return memory_advice_for(int(shared), int(size))

    def is_blank(self) -> bool:
        """Whether the database holds nothing but its schema: no row in any table (bookkeeping
        aside: the migrations applied, how far the search index goes)."""
        if self.dialect == POSTGRESQL:
            sql = (
                "SELECT table_name FROM information_schema.tables WHERE table_schema ="
                " current_schema() AND table_type = 'BASE TABLE'"
                " AND table_name NOT IN ('_migrations', 'search_backlog')"
            )
        else:
            sql = (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
                " AND name NOT IN ('_migrations', 'search_backlog')"
                " AND name NOT LIKE '%\\_fts\\_%' ESCAPE '\\'"
            )
        names = [row[0] for row in self.conn.execute(sql)]
        return not any(
            self.conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() for name in names
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> Connection:
        return self._conn

    @contextlib.contextmanager
    def one_connection(self) -> Iterator[None]:
        """Every statement of the block on one connection (SQLite has only one; PostgreSQL's
        pool otherwise lends one per statement): for TEMP tables, which belong to it."""
        if isinstance(self._conn, PgConnection):
            with self._conn.hold():
                yield
        else:
            yield

    @contextlib.contextmanager
    def temp_tables(self, make: Callable[[Connection], _Temp]) -> Iterator[_Temp]:
        """`make(conn)`, an object keeping TEMP tables (staging, lookups), used on one
        connection (TEMP tables belong to it) and dropped when the block ends."""
        with self.one_connection():
            made = make(self.conn)
            try:
                yield made
            except BaseException as exc:
                if self.dialect == SQLITE and is_disk_full(exc) and not self.conn.in_transaction:
                    # Dropping TEMP tables on a full disk can fail halfway; a new connection
                    # leaves them, and their file, behind whole.
                    self._conn.close()
                    self._conn = self._connect_sqlite()
                else:
                    made.drop()
                raise
            made.drop()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing. Nested calls become savepoints of the outer transaction."""
        if self.conn.in_transaction:
            name = f"sp{next(_savepoints)}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                self.conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        # SQLite: take the write lock up front. PostgreSQL locks rows as it writes them.
        self.conn.execute("BEGIN IMMEDIATE" if self.dialect == SQLITE else "BEGIN")
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

    def stream(
        self, sql: str, params: Any = (), size: int = 5_000
    ) -> tuple[list[str], Iterator[Any]]:
        """A query's column names and its rows, read as they are used: constant memory
        whatever the result's size (sqlite3 steps through rows; PostgreSQL needs a
        server-side cursor, as a plain one takes the whole result first)."""
        if isinstance(self.conn, PgConnection):
            return self.conn.stream(sql, params, size)
        cursor = self.conn.execute(sql, params)
        return [d[0] for d in cursor.description], iter(cursor)

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
