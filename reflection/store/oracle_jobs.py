"""What the reflection pipeline needs beyond plain candidates: job look-ups, bulk cache, saves.

A reflection *job* is one request for one version of one sample, named by a deterministic
job key. A finished job is stored as a candidate with that key; a job that ended in an error
is stored under ``<key>:error`` so that a later run retries it, and the error row is replaced
by the retry's result unless someone already reviewed, scored or built on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from ..records import Candidate
from .base import now
from .candidates import CandidateStore, _candidate

ERROR_SUFFIX = ":error"


T = TypeVar("T")


def _chunks(values: list[T], size: int = 500) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class OracleJobStore(CandidateStore):
    """Builds on candidates: a finished job is saved as one."""

    def candidates_by_job_keys(self, keys: Iterable[str]) -> dict[str, Candidate]:
        """Stored candidates by job key (error rows are not included)."""
        found: dict[str, Candidate] = {}
        for chunk in _chunks(list(keys)):
            rows = self.query(
                f"SELECT * FROM candidates WHERE job_key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update((row["job_key"], _candidate(row)) for row in rows)
        return found

    def cache_get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Cached oracle responses (as stored JSON text) by request key."""
        found: dict[str, str] = {}
        for chunk in _chunks(list(keys)):
            rows = self.conn.execute(
                f"SELECT key, response FROM oracle_cache WHERE key IN"
                f" ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update(rows)
        return found

    def save_oracle_results(
        self, candidates: list[Candidate], cache_rows: list[tuple[str, str, str, str]]
    ) -> list[int]:
        """Store finished jobs and their responses in one transaction; returns candidate ids.

        `cache_rows` are (key, model, request JSON, response JSON); the request must already
        be free of secrets. Error rows of the same jobs that nobody depends on are replaced.
        """
        created = now()
        with self.transaction():
            if cache_rows:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO oracle_cache (key, model, request, response,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    [(*row, created) for row in cache_rows],
                )
            retried = [
                c.job_key.removesuffix(ERROR_SUFFIX) + ERROR_SUFFIX for c in candidates if c.job_key
            ]
            for chunk in _chunks(retried):
                marks = ",".join("?" * len(chunk))
                stale = [
                    row[0]
                    for row in self.conn.execute(
                        f"SELECT id FROM candidates WHERE job_key IN ({marks})", chunk
                    )
                ]
                for candidate_id in stale:  # rare: only jobs that failed in an earlier run
                    self.conn.execute(
                        "DELETE FROM candidates WHERE id = ?"
                        " AND NOT EXISTS (SELECT 1 FROM reviews WHERE candidate_id = ?)"
                        " AND NOT EXISTS (SELECT 1 FROM scores WHERE candidate_id = ?)"
                        " AND NOT EXISTS (SELECT 1 FROM candidates WHERE parent_id = ?)",
                        [candidate_id] * 4,
                    )
            return self.add_candidates(candidates) if candidates else []

    def reflect_counts(self, run_id: int) -> dict[str, int]:
        """Candidates a run stored, by status."""
        rows = self.conn.execute(
            "SELECT status, count(*) FROM candidates WHERE run_id = ? GROUP BY status", [run_id]
        )
        return dict(rows)
