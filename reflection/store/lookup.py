"""A dataset's samples looked up a chunk of records at a time, for matching imported files.

Matching a file of reflections to a million samples used to hold every sample in memory.
Here positions are read from the (dataset, position) index; keys computed from a sample's
text or fields (the caller's function) go to a TEMP table built by streaming the dataset
once; and what a file has already named (ids, samples, new originals) is remembered in a
TEMP table too. Memory holds a chunk; the temporary file holds the rest and goes with the
connection.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..records import Sample
from .base import json_list
from .connection import Connection
from .samples import _sample
from .staging import drop_temp, temp_write

_names = itertools.count(1)
CHUNK = 5000


class SampleLookup:
    """Use through `Store.sample_lookup(dataset_id)`; `dataset_id` None: an empty dataset."""

    def __init__(self, conn: Connection, dataset_id: int | None):
        self.conn, self.dataset_id = conn, dataset_id
        n = next(_names)
        self.keys_table, self.seen_table = f"temp.lookup_keys_{n}", f"temp.lookup_seen_{n}"
        conn.execute(f"CREATE TABLE {self.keys_table} (how TEXT, key TEXT, sample_id INTEGER)")
        conn.execute(
            f"CREATE TABLE {self.seen_table} (kind TEXT, key TEXT, value INTEGER,"
            " PRIMARY KEY (kind, key)) WITHOUT ROWID"
        )
        self.built: set[str] = set()
        self.keyed: set[str] = set()  # the `how`s some sample has a key for

    def count(self) -> int:
        if self.dataset_id is None:
            return 0
        (count,) = self.conn.execute(
            "SELECT count(*) FROM samples WHERE dataset_id = ?", [self.dataset_id]
        ).fetchone()
        return int(count)

    def by_position(self, low: int, high: int) -> dict[int, list[int]]:
        """Sample ids by position, for positions low..high."""
        found: dict[int, list[int]] = {}
        if self.dataset_id is None:
            return found
        rows = self.conn.execute(
            "SELECT position, id FROM samples WHERE dataset_id = ? AND position BETWEEN ? AND ?"
            " ORDER BY position, id",
            [self.dataset_id, low, high],
        )
        for position, sample_id in rows:
            found.setdefault(position, []).append(sample_id)
        return found

    def build(self, how: str, key_of: Callable[[Sample], str | None]) -> None:
        """Compute `key_of(sample)` for every sample of the dataset, once per `how`."""
        if how in self.built:
            return
        self.built.add(how)
        if self.dataset_id is None:
            return
        cursor = self.conn.execute(
            "SELECT * FROM samples WHERE dataset_id = ? ORDER BY id", [self.dataset_id]
        )
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(CHUNK):
            keyed = []
            for row in rows:
                sample = _sample(dict(zip(names, row, strict=True)))
                key = key_of(sample)
                if key is not None:
                    keyed.append((how, key, sample.id))
            if keyed:
                self.keyed.add(how)
            self._write(f"INSERT INTO {self.keys_table} VALUES (?, ?, ?)", keyed)
        index = f"{self.keys_table}_index".replace("temp.", "")
        self.conn.execute(f"CREATE INDEX IF NOT EXISTS temp.{index} ON"
                          f" {self.keys_table.removeprefix('temp.')} (how, key)")  # fmt: skip

    def has_keys(self, how: str) -> bool:
        """Whether any sample had a key for `how` when it was built."""
        return how in self.keyed

    def by_key(self, how: str, keys: Iterable[str]) -> dict[str, list[int]]:
        """Sample ids by key (as `build` computed them), for these keys."""
        found: dict[str, list[int]] = {}
        rows = self.conn.execute(
            f"SELECT key, sample_id FROM {self.keys_table} WHERE how = ?"
            " AND key IN (SELECT value FROM json_each(?)) ORDER BY key, sample_id",
            [how, json_list(set(keys))],
        )
        for key, sample_id in rows:
            found.setdefault(key, []).append(sample_id)
        return found

    def samples(self, ids: Iterable[int]) -> dict[int, Sample]:
        """The samples `ids` with what matching and building versions read: ids, dataset,
        position, the three texts and the content hash (not the system prompt, history, meta
        or flags, whose JSON was a fifth of an import's matching)."""
        rows = self.conn.execute(
            "SELECT id, dataset_id, position, instruction, input, output, content_hash"
            " FROM samples WHERE id IN (SELECT value FROM json_each(?))",
            [json_list(set(ids))],
        )
        return {
            row[0]: Sample(row[3], row[4], row[5], id=row[0], dataset_id=row[1],
                           position=row[2], content_hash=row[6])
            for row in rows
        }  # fmt: skip

    def remember(self, kind: str, items: list[tuple[str, int]]) -> list[int | None]:
        """For each (key, value) in order: the value remembered first for `key` (this call
        included), or None where this is the first; remembers the new ones."""
        known = dict(
            self.conn.execute(
                f"SELECT key, value FROM {self.seen_table} WHERE kind = ?"
                " AND key IN (SELECT value FROM json_each(?))",
                [kind, json_list({key for key, _ in items})],
            ).fetchall()
        )
        earlier, new = [], []
        for key, value in items:
            if key in known:
                earlier.append(known[key])
            else:
                earlier.append(None)
                known[key] = value
                new.append((kind, key, value))
        self._write(f"INSERT INTO {self.seen_table} VALUES (?, ?, ?)", new)
        return earlier

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        temp_write(self.conn, sql, rows)

    def drop(self) -> None:
        drop_temp(self.conn, self.keys_table, self.seen_table)
