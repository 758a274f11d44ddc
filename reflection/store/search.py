"""The full-text index of samples, built behind imports in short transactions.

An import publishes its samples in one transaction without their full-text entries (at a
million samples, indexing takes longer than everything else an import does); the entries
are added after, a chunk per transaction, so other writers wait seconds, not minutes, and a
crash loses nothing: the next call carries on from `search_backlog.indexed_upto` (samples
are never deleted and their ids only grow). Searches read samples above that id directly,
so they are complete at every moment.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import StoreBase

INDEX_CHUNK = 50_000  # samples indexed per transaction (a few seconds each)


class SearchIndexStore(StoreBase):
    def search_backlog(self) -> int:
        """How many samples are not in the full-text index yet."""
        return self.scalar(
            "SELECT count(*) FROM samples WHERE id >"
            " (SELECT indexed_upto FROM search_backlog WHERE name = 'samples')"
        )

    def index_search_backlog(
        self, *, chunk: int = INDEX_CHUNK, progress: Callable[[int], None] | None = None
    ) -> int:
        """Add every sample not yet in the full-text index, a chunk per transaction; returns
        how many. Safe to run from several processes at once: each chunk is claimed under
        the write lock."""
        done = 0
        while True:
            with self.transaction():
                upto = self.scalar("SELECT indexed_upto FROM search_backlog WHERE name = 'samples'")
                end = self.scalar(
                    "SELECT max(id) FROM (SELECT id FROM samples WHERE id > ? ORDER BY id LIMIT ?)",
                    [upto, chunk],
                )
                if end is None:
                    return done
                cursor = self.conn.execute(
                    "INSERT INTO samples_fts (rowid, instruction, input, output)"
                    " SELECT id, instruction, input, output FROM samples WHERE id > ? AND id <= ?",
                    [upto, end],
                )
                self.conn.execute(
                    "UPDATE search_backlog SET indexed_upto = ? WHERE name = 'samples'", [end]
                )
            done += cursor.rowcount
            if progress is not None:
                progress(done)
