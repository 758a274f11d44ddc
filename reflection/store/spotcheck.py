"""Spot-checks and candidate imports: the SQL behind `reflection.review.spotcheck` and `reflection.ingest.adopt`.

A spot-check is a named, seeded random draw of a dataset's samples, stored as its own review
queue (`spotchecks` and their ranked `spotcheck_items`). What reviewers decided about those
samples lives where every decision lives, in `reviews` and `sample_state`; the queries here
only read it back per item.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NotFoundError, ReflectionError
from ..records import DERIVED_FLAGS
from .base import INTEGRITY_ERRORS, dumps, inserted_id, loads, now
from .queue import QueueQuery, QueueStore


def _flagged(ids: np.ndarray, flag: str) -> Iterator[tuple[int, str]]:
    return ((int(sample_id), flag) for sample_id in ids)


@dataclass
class SpotCheck:
    """A stored spot-check: how it was drawn, and from how many samples per stratum."""

    dataset_id: int
    name: str
    seed: int
    size: int
    population: int
    stratify: str = ""
    strata: dict[str, int] = field(default_factory=dict)  # stratum -> population size
    settings: dict[str, Any] = field(default_factory=dict)
    annotator: str = ""
    id: int | None = None
    created_at: str = ""


@dataclass
class SpotItem:
    """One drawn sample, with the decision in force for it (None while undecided)."""

    rank: int
    sample_id: int
    stratum: str
    status: str | None = None
    candidate_id: int | None = None
    decided_at: str = ""
    bulk: bool = False  # the decision in force came from a bulk rule, not a person


def _spotcheck(row: dict[str, Any]) -> SpotCheck:
    row = dict(row)
    row["strata"] = loads(row["strata"], {})
    row["settings"] = loads(row["settings"], {})
    return SpotCheck(**row)


class SpotCheckStore(QueueStore):
    """Builds on the queue: strata are the queue's flags."""

    # --- spot-checks ------------------------------------------------------------------------

    def add_spotcheck(self, spot: SpotCheck, items: Iterable[tuple[int, str]]) -> SpotCheck:
        """Store a spot-check and its items [(sample_id, stratum)] in queue order, as one."""
        spot.created_at = spot.created_at or now()
        try:
            with self.transaction():
                cursor = self.conn.execute(
                    "INSERT INTO spotchecks (dataset_id, name, seed, size, population, stratify,"
                    " strata, settings, annotator, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " RETURNING id",
                    [
                        spot.dataset_id,
                        spot.name,
                        spot.seed,
                        spot.size,
                        spot.population,
                        spot.stratify,
                        dumps(spot.strata),
                        dumps(spot.settings),
                        spot.annotator,
                        spot.created_at,
                    ],
                )
                spot.id = inserted_id(cursor)
                self.conn.executemany(
                    "INSERT INTO spotcheck_items (spotcheck_id, rank, sample_id, stratum)"
                    " VALUES (?, ?, ?, ?)",
                    [(spot.id, rank, sid, stratum) for rank, (sid, stratum) in enumerate(items, 1)],
                )
        except INTEGRITY_ERRORS as exc:
            # SQLite names the columns, PostgreSQL the constraint.
            if any(key in str(exc) for key in ("spotchecks.dataset_id, spotchecks.name",
                                               "spotchecks_dataset_id_name_key")):  # fmt: skip
                raise ReflectionError(
                    f"a spot-check called {spot.name!r} already exists for this dataset;"
                    " choose another name or delete it first"
                ) from None
            raise
        return spot

    def spotcheck(self, name_or_id: str | int, dataset_id: int | None = None) -> SpotCheck:
        """One spot-check by id, or by name (within `dataset_id` when names repeat)."""
        if isinstance(name_or_id, int):
            rows = self.query("SELECT * FROM spotchecks WHERE id = ?", [name_or_id])
        elif dataset_id is not None:
            rows = self.query(
                "SELECT * FROM spotchecks WHERE name = ? AND dataset_id = ?",
                [name_or_id, dataset_id],
            )
        else:
            rows = self.query("SELECT * FROM spotchecks WHERE name = ?", [name_or_id])
        if not rows:
            known = ", ".join(s.name for s in self.spotchecks(dataset_id)) or "none yet"
            raise NotFoundError(
                f"no spot-check {name_or_id!r} in {self.path} (spot-checks: {known})"
            )
        if len(rows) > 1:
            raise ReflectionError(
                f"several datasets have a spot-check called {name_or_id!r}; name the dataset"
            )
        return _spotcheck(rows[0])

    def spotchecks(self, dataset_id: int | None = None) -> list[SpotCheck]:
        where, params = ("WHERE dataset_id = ?", [dataset_id]) if dataset_id else ("", [])
        rows = self.query(f"SELECT * FROM spotchecks {where} ORDER BY id", params)
        return [_spotcheck(row) for row in rows]

    def delete_spotcheck(self, spotcheck_id: int) -> None:
        """Forget a spot-check's queue; the reviews made through it stay."""
        with self.transaction():
            self.conn.execute("DELETE FROM spotcheck_items WHERE spotcheck_id = ?", [spotcheck_id])
            self.conn.execute("DELETE FROM spotchecks WHERE id = ?", [spotcheck_id])

    def spotcheck_sample_ids(self, spotcheck_id: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT sample_id FROM spotcheck_items WHERE spotcheck_id = ? ORDER BY rank",
            [spotcheck_id],
        )
        return [row[0] for row in rows]

    def spotcheck_items(self, spotcheck_id: int) -> list[SpotItem]:
        """The drawn samples in queue order, each with its decision in force."""
        rows = self.conn.execute(
            "SELECT i.rank, i.sample_id, i.stratum, st.status, st.candidate_id, st.decided_at,"
            " r.run_id IS NOT NULL FROM spotcheck_items i"
            " LEFT JOIN sample_state st ON st.sample_id = i.sample_id"
            " LEFT JOIN reviews r ON r.id = st.review_id"
            " WHERE i.spotcheck_id = ? ORDER BY i.rank",
            [spotcheck_id],
        )
        return [
            SpotItem(rank, sid, stratum, status, cid or None, decided or "", bool(bulk))
            for rank, sid, stratum, status, cid, decided, bulk in rows
        ]

    # --- what a draw is drawn from ----------------------------------------------------------

    def population_stream(self, dataset_id: int, kinds: tuple[str, ...] = ()) -> Iterator[int]:
        """Sample ids of a dataset in id order, read as they are used; with `kinds`, only
        samples with such a candidate."""
        sql = "SELECT s.id FROM samples s WHERE s.dataset_id = ?"
        params: list[Any] = [dataset_id]
        if kinds:
            marks = ",".join("?" * len(kinds))
            sql += (
                " AND EXISTS (SELECT 1 FROM candidates c WHERE c.sample_id = s.id"
                f" AND c.kind IN ({marks}))"
            )
            params += kinds
        _, rows = self.stream(sql + " ORDER BY s.id", params)
        return (row[0] for row in rows)

    def candidate_kinds_stream(self, dataset_id: int) -> Iterator[tuple[int, str]]:
        """(sample id, candidate kind), each distinct pair once, by sample id then kind."""
        _, rows = self.stream(
            "SELECT DISTINCT c.sample_id, c.kind FROM candidates c JOIN samples s"
            " ON s.id = c.sample_id WHERE s.dataset_id = ? ORDER BY c.sample_id, c.kind",
            [dataset_id],
        )
        return ((sample_id, kind) for sample_id, kind in rows)

    def flag_stream(self, dataset_id: int) -> Iterator[tuple[int, str]]:
        """(sample id, flag) of every flagged sample, by sample id then flag: the flags set at
        import, read as they are used, and those the review queue derives, through the queue's
        own filter (this mixin is part of the same Store), so a stratum and the queue filter of
        that name hold the same samples. Each derived flag's samples are kept as a sorted
        numpy array while the streams merge: 8 bytes a flagged sample."""
        _, rows = self.stream(
            "SELECT s.id, j.value FROM samples s, json_each(s.flags) j"
            " WHERE s.dataset_id = ? AND s.flags != '[]' ORDER BY s.id, j.value",
            [dataset_id],
        )
        derived = [
            (
                np.sort(np.array(self.queue_ids(dataset_id, QueueQuery(flags=(flag,))), np.int64)),
                flag,
            )
            for flag in DERIVED_FLAGS
        ]
        streams = [_flagged(ids, flag) for ids, flag in derived]
        return heapq.merge(((sid, str(flag)) for sid, flag in rows), *streams)

    def score_stream(
        self, dataset_id: int, metric: str, version: str
    ) -> Iterator[tuple[int, float]]:
        """(sample id, value) of `metric` for the original's versions or the candidates', by
        sample id, oldest first: the last of a sample is its newest candidate's newest score."""
        op = "=" if version == "original" else "!="
        _, rows = self.stream(
            "SELECT sc.sample_id, sc.value FROM scores sc JOIN samples s ON s.id = sc.sample_id"
            f" WHERE s.dataset_id = ? AND sc.metric = ? AND sc.candidate_id {op} 0"
            " AND sc.value IS NOT NULL ORDER BY sc.sample_id, sc.candidate_id, sc.id",
            [dataset_id, metric],
        )
        return ((sample_id, value) for sample_id, value in rows)

    def has_candidates(self, dataset_id: int) -> bool:
        return bool(
            self.scalar(
                "SELECT EXISTS (SELECT 1 FROM candidates c JOIN samples s ON s.id = c.sample_id"
                " WHERE s.dataset_id = ?)",
                [dataset_id],
            )
        )

    # --- candidate imports ------------------------------------------------------------------

    def max_position(self, dataset_id: int) -> int | None:
        position: int | None = self.scalar(
            "SELECT max(position) FROM samples WHERE dataset_id = ?", [dataset_id]
        )
        return position
