"""The connection interface the store's mixins use, met by sqlite3 and by `postgres.PgConnection`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

SQLITE, POSTGRESQL = "sqlite", "postgresql"

# Column types of staging tables (SQLite lets a column go untyped; PostgreSQL does not).
_INTEGER_COLUMNS = {"position", "sample_id", "parent_id", "prompt_tokens", "completion_tokens",
                    "run_id", "for_candidate", "candidate_id", "chosen"}  # fmt: skip
_REAL_COLUMNS = {"cost", "value", "confidence"}


def typed(columns: tuple[str, ...] | list[str]) -> str:
    """Column definitions with their types, for CREATE TABLE of a staging table."""

    def kind(name: str) -> str:
        if name in _INTEGER_COLUMNS:
            return "INTEGER"
        return "REAL" if name in _REAL_COLUMNS else "TEXT"

    return ", ".join(f"{name} {kind(name)}" for name in columns)


class Cursor(Protocol):
    """What the store reads from a cursor, on SQLite and on PostgreSQL alike."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ..., /) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """sqlite3.Connection, or `postgres.PgConnection` which speaks the same subset."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Cursor: ...
    @property
    def in_transaction(self) -> bool: ...
    def close(self) -> None: ...
