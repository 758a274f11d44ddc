"""The full-text indexes of samples and candidates, built behind bulk writes.

An import publishes its rows in one transaction without their full-text entries (at a
million samples, indexing takes longer than everything else an import does); the entries
are added after, a chunk per transaction, so other writers wait seconds, not minutes, and a
crash loses nothing: the next call carries on from `search_backlog.indexed_upto` (ids only
grow). Searches read the rows above that id directly, so they are complete at every moment.
Small writes (a reply, an edit) index their rows at once, in their own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .base import StoreBase
from .connection import POSTGRESQL
from .postgres import SEARCH_SET, tsquery

INDEX_CHUNK = 50_000  # rows indexed per transaction (a few seconds each)
TABLES = ("samples", "candidates")


def fts_query(text: str) -> str:
    """User words as an FTS5 query: every token must occur (as a prefix), operators inert.

    Tokens as the index's tokenizer cuts them (runs of letters and digits), each its own
    term: the index keeps no positions (m021), so a word such as "don't" asks for "don" and
    "t" anywhere in the row rather than for the phrase."""
    return " ".join(f'"{token}"*' for token in _TOKEN.findall(text))


# What unicode61 keeps as a token: letters and digits (`\w` less the underscore).
_TOKEN = re.compile(r"[^\W_]+")


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
    if dialect == POSTGRESQL:
        match = tsquery(text)
        return (f"s.id IN ({SEARCH_SET})", [match, match]) if match else None
    match = fts_query(text)
    if not match:
        return None
    # One UNIONed id set (not two ORed ones): half the time at 100k samples. Samples an
    # import published but has not indexed yet are read directly.
    like, like_params = like_all(text)
    return (
        "s.id IN (SELECT rowid FROM samples_fts WHERE samples_fts MATCH ?"
        " UNION SELECT c.sample_id FROM candidates c WHERE c.id IN"
        " (SELECT rowid FROM candidates_fts WHERE candidates_fts MATCH ?)"
        " UNION SELECT id FROM samples WHERE id >"
        f" (SELECT indexed_upto FROM search_backlog WHERE name = 'samples') AND {like}"
        " UNION SELECT sample_id FROM candidates WHERE id >"
        f" (SELECT indexed_upto FROM search_backlog WHERE name = 'candidates') AND {like})",
        [match, match, *like_params, *like_params],
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
