"""Candidates (and judge scores) staged by an import of reflections made elsewhere.

Like `staging.Staging` for samples: TEMP tables written a chunk at a time while the file is
read and matched, then published with INSERT ... SELECT inside the caller's transaction.
Candidates of originals the same import adds name their sample by content hash until the
publish, when those samples get their ids; job keys get the dataset's id the same way.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

from ..records import Candidate
from .base import StoreBase, now
from .bulk_counts import counted_in_bulk
from .candidates import _FIELDS, _row
from .connection import POSTGRESQL, Connection, typed
from .lookup import SampleLookup
from .schema import SCORE_CHANGES_SELECT
from .scores import update_scores_from
from .staging import drop_temp, temp_write

_names = itertools.count(1)
_STAGED = (*_FIELDS, "sample_hash", "job_suffix")
_SAMPLE_ID = _FIELDS.index("sample_id")
_SCORES = ("job_suffix", "for_candidate", "metric", "scorer", "value", "detail")


class CandidateStaging:
    """Use through `Store.staged_candidates()`."""

    def __init__(self, conn: Connection):
        self.conn = conn
        n = next(_names)
        self.table, self.scores = f"temp.staged_candidates_{n}", f"temp.staged_scores_{n}"
        conn.execute(f"CREATE TABLE {self.table} (seq INTEGER PRIMARY KEY, {typed(_STAGED)})")
        conn.execute(f"CREATE TABLE {self.scores} ({typed(_SCORES)})")
        self.count = 0

    def add(self, staged: list[tuple[Candidate, str | None, str]]) -> None:
        """Stage (candidate, content hash of its new original or None, job key suffix)."""
        created = now()
        rows = []
        for candidate, sample_hash, suffix in staged:
            row = _row(candidate, created)
            if sample_hash:  # a new original's: NULL, set from its hash on publish
                row[_SAMPLE_ID] = None
            row += (sample_hash, suffix)
            rows.append(row)
        temp_write(self.conn, f"INSERT INTO {self.table} ({', '.join(_STAGED)}) VALUES"
                              f" ({', '.join('?' * len(_STAGED))})", rows)  # fmt: skip
        self.count += len(rows)

    def add_scores(self, rows: list[tuple[str, bool, str, str, float, str]]) -> None:
        """Stage (job key suffix, of the candidate (else the original), metric, scorer,
        value, detail JSON)."""
        temp_write(self.conn, f"INSERT INTO {self.scores} VALUES"
                              f" ({', '.join('?' * len(_SCORES))})", rows)  # fmt: skip

    def raw_replies(self, chunk: int = 2000) -> Iterator[list[tuple[int, str, int | None]]]:
        """(seq, raw reply, sample id) of every staged candidate, in chunks."""
        last = 0
        while rows := self.conn.execute(
            f"SELECT seq, raw, sample_id FROM {self.table} WHERE seq > ? ORDER BY seq LIMIT ?",
            [last, chunk],
        ).fetchall():
            yield rows
            last = rows[-1][0]

    def replace(self, seq: int, **values: Any) -> None:
        """Change staged columns of one candidate (replies parsed again with another template)."""
        names = ", ".join(f"{name} = ?" for name in values)
        self.conn.execute(f"UPDATE {self.table} SET {names} WHERE seq = ?", [*values.values(), seq])

    def publish(self, dataset_id: int, run_id: int, kind: str) -> dict[str, Any]:
        """Insert the staged candidates (a job key already stored keeps its candidate) and
        scores; returns {"added", "already", "statuses", "scores"}. Call in a transaction."""
        if not self.conn.in_transaction:
            raise RuntimeError("publish belongs inside a transaction")
        prefix = f"import:{dataset_id}"
        self.conn.execute(
            f"UPDATE {self.table} SET sample_id = (SELECT id FROM samples WHERE dataset_id = ?"
            f" AND content_hash = {self.table}.sample_hash) WHERE sample_id IS NULL",
            [dataset_id],
        )
        fresh = (
            f"FROM {self.table} s WHERE NOT EXISTS (SELECT 1 FROM candidates c"
            " WHERE c.job_key = ? || s.job_suffix)"
        )
        statuses = dict(
            self.conn.execute(f"SELECT status, count(*) {fresh} GROUP BY status", [prefix])
        )
        columns = ", ".join(_FIELDS)
        chosen = ", ".join(
            {"kind": "?", "run_id": "?", "job_key": "? || job_suffix"}.get(name, name)
            for name in _FIELDS
        )
        with counted_in_bulk(self.conn, "candidates"):
            added = self.conn.execute(
                f"INSERT INTO candidates ({columns}) SELECT {chosen} FROM {self.table}"
                " WHERE true ORDER BY seq ON CONFLICT (job_key) DO NOTHING",
                [kind, run_id, prefix],
            ).rowcount
        scores = self._publish_scores(prefix, run_id)
        return {"added": added, "already": self.count - added, "statuses": statuses,
                "scores": scores}  # fmt: skip

    def _publish_scores(self, prefix: str, run_id: int) -> int:
        joined = f"FROM {self.scores} ss JOIN candidates c ON c.job_key = ? || ss.job_suffix"
        (count,) = self.conn.execute(f"SELECT count(*) {joined}", [prefix]).fetchone()
        if not count:
            return 0
        rows = (
            "SELECT c.sample_id, CASE WHEN ss.for_candidate != 0 THEN c.id ELSE 0 END"
            " AS candidate_id, ss.metric, ss.scorer, ss.value, ss.detail,"
            f" CAST(? AS BIGINT) AS run_id, CAST(? AS TEXT) AS created_at {joined}"
        )
        params = [run_id, now(), prefix]
        if str(getattr(self.conn, "dialect", "sqlite")) == POSTGRESQL:
            # Updates first, in a statement of their own: `put_scores` says why.
            self.conn.execute(update_scores_from(f"({rows})"), params)
        self.conn.execute(
            "INSERT INTO scores (sample_id, candidate_id, metric, scorer, value, detail, run_id,"
            f" created_at) {rows} WHERE true"
            " ON CONFLICT (sample_id, candidate_id, metric, scorer) DO UPDATE SET"
            " value = excluded.value, detail = excluded.detail, run_id = excluded.run_id,"
            " created_at = excluded.created_at",
            params,
        )
        # Keep the derived score_changes of the touched samples in step (see m009).
        touched = f"(SELECT c.sample_id {joined})"
        self.conn.execute(f"DELETE FROM score_changes WHERE sample_id IN {touched}", [prefix])
        self.conn.execute(
            f"INSERT INTO score_changes {SCORE_CHANGES_SELECT} AND c.sample_id IN"
            f" (SELECT c.sample_id FROM {self.scores} ss JOIN candidates c"
            " ON c.job_key = ? || ss.job_suffix)",
            [prefix],
        )
        return int(count)

    def drop(self) -> None:
        drop_temp(self.conn, self.table, self.scores)


class AdoptStore(StoreBase):
    """What an import of reflections made elsewhere stages and looks up, in TEMP tables."""

    def staged_candidates(self) -> contextlib.AbstractContextManager[CandidateStaging]:
        return self.temp_tables(CandidateStaging)

    def sample_lookup(self, dataset_id: int | None) -> contextlib.AbstractContextManager[SampleLookup]:  # fmt: skip
        return self.temp_tables(lambda conn: SampleLookup(conn, dataset_id))
