"""Candidates: alternative versions of a sample."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from ..errors import NotFoundError
from ..records import CANDIDATE_KINDS, Candidate
from .base import dumps_compact, json_list, loads, now
from .schema_tallies import CANDIDATES
from .search import SearchIndexStore
from .tallies import TallyStore

_FIELDS = (
    "sample_id", "kind", "parent_id", "instruction", "input", "output", "critique", "raw",
    "status", "error", "model", "prompt_hash", "params", "prompt_tokens", "completion_tokens",
    "cost", "run_id", "annotator", "origin", "job_key", "created_at",
)  # fmt: skip


def _candidate(row: dict[str, Any]) -> Candidate:
    row = dict(row)
    row["params"] = loads(row["params"], {})
    row["origin"] = loads(row["origin"], {})
    return Candidate(**row)


_VALUES = operator.attrgetter(*_FIELDS)
_PARAMS, _ORIGIN, _CREATED = (_FIELDS.index(name) for name in ("params", "origin", "created_at"))


def _row(candidate: Candidate, created: str) -> list[Any]:
    """The candidate's _FIELDS, JSON as stored (a list: the caller may change a column)."""
    if candidate.kind not in CANDIDATE_KINDS:
        raise ValueError(f"unknown candidate kind {candidate.kind!r}")
    row = list(_VALUES(candidate))
    row[_PARAMS], row[_ORIGIN] = dumps_compact(candidate.params), dumps_compact(candidate.origin)
    row[_CREATED] = candidate.created_at or created
    return row


class CandidateStore(SearchIndexStore, TallyStore):
    def add_candidates(self, candidates: Iterable[Candidate]) -> list[int]:
        """Insert candidates; sets and returns their ids. A repeated job_key keeps the first."""
        created = now()
        ids: list[int] = []
        sql = (
            f"INSERT INTO candidates ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
            " ON CONFLICT (job_key) DO NOTHING RETURNING id"
        )
        with self.transaction():
            for candidate in candidates:
                added = self.conn.execute(sql, _row(candidate, created)).fetchall()
                if added:
                    candidate_id: int = added[0][0]
                else:  # job already stored by an earlier run
                    candidate_id = self.scalar(
                        "SELECT id FROM candidates WHERE job_key = ?", [candidate.job_key]
                    )
                candidate.id = candidate_id
                ids.append(candidate_id)
            self.index_search_backlog("candidates")  # searchable at once, as with a trigger
        return ids

    def add_candidate(self, candidate: Candidate) -> int:
        return self.add_candidates([candidate])[0]

    def candidate(self, candidate_id: int) -> Candidate:
        row = self.query_one("SELECT * FROM candidates WHERE id = ?", [candidate_id])
        if row is None:
            raise NotFoundError(f"no candidate {candidate_id} in {self.path}")
        return _candidate(row)

    def candidates_for(self, sample_id: int) -> list[Candidate]:
        rows = self.query("SELECT * FROM candidates WHERE sample_id = ? ORDER BY id", [sample_id])
        return [_candidate(row) for row in rows]

    def candidates_for_samples(self, sample_ids: Iterable[int]) -> dict[int, list[Candidate]]:
        found: dict[int, list[Candidate]] = {}
        rows = self.query(
            "SELECT * FROM candidates WHERE sample_id IN (SELECT value FROM json_each(?))"
            " ORDER BY id",
            [json_list(sample_ids)],
        )
        for row in rows:
            found.setdefault(row["sample_id"], []).append(_candidate(row))
        return found

    def usable_versions(
        self, sample_ids: Iterable[int], unusable: Iterable[str]
    ) -> dict[int, list[tuple[int, str, int | None]]]:
        """(id, kind, parent_id) of each candidate of these samples that stands for a version,
        by sample, in id order: not in an `unusable` status and with an instruction or an
        output (scoring/versions.py's `candidate_version`), without reading a text out."""
        found: dict[int, list[tuple[int, str, int | None]]] = {}
        rows = self.conn.execute(
            "SELECT sample_id, id, kind, parent_id FROM candidates"
            " WHERE sample_id IN (SELECT value FROM json_each(?))"
            " AND status NOT IN (SELECT value FROM json_each(?))"
            " AND (instruction <> '' OR output <> '') ORDER BY id",
            [json_list(sample_ids), json_list(unusable)],
        )
        for sample_id, cid, kind, parent_id in rows:
            found.setdefault(sample_id, []).append((cid, kind, parent_id))
        return found

    def candidates_by_id(self, candidate_ids: Iterable[int]) -> dict[int, Candidate]:
        rows = self.query(
            "SELECT * FROM candidates WHERE id IN (SELECT value FROM json_each(?))",
            [json_list(set(candidate_ids))],
        )
        return {row["id"]: _candidate(row) for row in rows}

    def done_job_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these job keys already have a stored candidate."""
        rows = self.conn.execute(
            "SELECT job_key FROM candidates WHERE job_key IN (SELECT value FROM json_each(?))",
            [json_list(keys)],
        )
        return {row[0] for row in rows}

    def count_candidates(self, dataset_id: int | None = None) -> int:
        return self.tallies(dataset_id).get(CANDIDATES, 0)  # kept as it writes (m018)
