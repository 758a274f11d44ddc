"""A rule's suggestions staged as they are made, then published in one transaction.

`suggest` walks a dataset a chunk of samples at a time; what it decides for each chunk goes
into a TEMP table (the connection's temporary file: no lock on the database, nothing left
after a crash), so memory holds one chunk whatever the dataset's size. `publish` then
replaces the suggestions of every staged sample at once: a sample staged without a verdict
loses an older suggestion, as before. All or nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from .base import now
from .connection import Connection, typed
from .staging import drop_temp, temp_write

_COLUMNS = ("sample_id", "candidate_id", "rule", "reason", "confidence", "decision", "chosen")
_names = itertools.count(1)
BATCH = 5000  # rows written to the TEMP table at a time


class SuggestionStaging:
    """Use through `Store.staged_suggestions()`."""

    def __init__(self, conn: Connection, run_id: int | None):
        self.conn, self.run_id = conn, run_id
        self.table = f"temp.staged_suggestions_{next(_names)}"
        conn.execute(f"CREATE TABLE {self.table} ({typed(_COLUMNS)})")

    def add(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (sample id, candidate id or 0, rule, reason, confidence, decision); a
        sample without a verdict is (sample id, None, None, None, None, None)."""
        marks = ", ".join("?" * len(_COLUMNS))
        rows = iter(rows)
        while staged := [(*row, int(row[2] is not None)) for row in itertools.islice(rows, BATCH)]:
            temp_write(self.conn, f"INSERT INTO {self.table} VALUES ({marks})", staged)

    def publish(self) -> int:
        """Replace the staged samples' suggestions; returns how many were written. Call
        inside a transaction."""
        if not self.conn.in_transaction:
            raise RuntimeError("publish belongs inside a transaction")
        self.conn.execute(
            f"DELETE FROM suggestions WHERE sample_id IN (SELECT sample_id FROM {self.table})"
        )
        cursor = self.conn.execute(
            "INSERT INTO suggestions (sample_id, candidate_id, rule, reason, confidence, run_id,"
            " created_at, decision) SELECT sample_id, candidate_id, rule, reason, confidence,"
            f" ?, ?, decision FROM {self.table} WHERE chosen = 1",
            [self.run_id, now()],
        )
        return int(cursor.rowcount)

    def drop(self) -> None:
        drop_temp(self.conn, self.table)
