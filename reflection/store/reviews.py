"""Reviews are append-only; `sample_state` caches the review in force for each sample, and
`reviewer_state` the one in force on each reviewer's own track (and the adjudication track).

How reviews replay into those two caches, for unassigned and assigned samples alike, is
explained in store/tracks.py: an unassigned sample replays as a stack where every decision
pushes and an `undo` pops, so undo restores the decision before, and a second undo the one
before that; an assigned sample keeps a stack per reviewer and settles on their agreement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import NotFoundError, ReflectionError
from ..records import DECISIONS, Review, SampleState
from .base import (
    dumps,
    from_db_candidate,
    inserted_id,
    json_list,
    loads,
    now,
    to_db_candidate,
)
from .tallies import TallyStore
from .tracks import (
    ADJUDICATION,
    REVIEW_KINDS,
    STATUS_OF_DECISION,
    Track,
    in_force,
    settle,
    track_of,
    tracks_in_force,
)

DECISION_OF_STATUS = {status: decision for decision, status in STATUS_OF_DECISION.items()}

__all__ = ["DECISION_OF_STATUS", "STATUS_OF_DECISION", "ReviewStore"]


def _review(row: dict[str, Any]) -> Review:
    row = dict(row)
    row["tags"] = loads(row["tags"], [])
    row["candidate_id"] = from_db_candidate(row["candidate_id"])
    return Review(**row)


def _state(row: dict[str, Any]) -> SampleState:
    return SampleState(
        sample_id=row["sample_id"],
        status=row["status"],
        review_id=row["review_id"],
        candidate_id=from_db_candidate(row["candidate_id"]),
        annotator=row["annotator"],
        decided_at=row["decided_at"],
    )


class ReviewStore(TallyStore):
    def add_review(self, review: Review) -> Review:
        """Append one decision and update the sample's state, in one transaction."""
        return self.add_reviews([review])[0]

    def add_reviews(self, reviews: Iterable[Review]) -> list[Review]:
        """Append decisions (all or none); each review gets its id and time."""
        reviews = list(reviews)
        self.append_reviews(reviews)
        return reviews

    def append_reviews(self, reviews: Iterable[Review]) -> int:
        """Append decisions (all or none) as they come, holding none: how many."""
        count = 0
        with self.transaction():
            for review in reviews:
                self._append(review)
                count += 1
        return count

    def _append(self, review: Review) -> None:
        if review.decision not in DECISIONS:
            raise ReflectionError(
                f"unknown decision {review.decision!r} (expected one of {', '.join(DECISIONS)})"
            )
        sample = self.query_one("SELECT dataset_id FROM samples WHERE id = ?", [review.sample_id])
        if sample is None:
            raise NotFoundError(f"no sample {review.sample_id} in {self.path}")
        if review.candidate_id:
            owner = self.query_one(
                "SELECT sample_id, kind FROM candidates WHERE id = ?", [review.candidate_id]
            )
            if owner is None or owner["sample_id"] != review.sample_id:
                raise ReflectionError(
                    f"candidate {review.candidate_id} is not a version of sample {review.sample_id}"
                )
            if review.decision == "edit" and owner["kind"] != "edit":
                raise ReflectionError(f"candidate {review.candidate_id} is not a human edit")
        elif review.decision == "edit":
            raise ReflectionError("an edit decision needs the edited candidate")
        if review.kind not in REVIEW_KINDS:
            raise ReflectionError(f"unknown review kind {review.kind!r}")
        review.created_at = review.created_at or now()
        cursor = self.conn.execute(
            "INSERT INTO reviews (sample_id, decision, candidate_id, annotator, note, tags,"
            " run_id, created_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                review.sample_id,
                review.decision,
                to_db_candidate(review.candidate_id),
                review.annotator,
                review.note,
                dumps(review.tags),
                review.run_id,
                review.created_at,
                review.kind,
            ],
        )
        review.id = inserted_id(cursor)
        if review.decision == "undo":
            self.replay_sample(review.sample_id, sample["dataset_id"])
            return
        # A decision only changes its own track: no replay needed.
        self._set_track(sample["dataset_id"], track_of(review), review)
        if self.dataset_assigned(sample["dataset_id"]):
            standing = self._settled(review.sample_id)
        else:
            standing = review
        self._set_state(review.sample_id, sample["dataset_id"], standing)

    def dataset_assigned(self, dataset_id: int) -> bool:
        """Whether any of the dataset's samples was ever assigned to a reviewer (then its
        samples replay per reviewer)."""
        found = self.conn.execute(
            "SELECT 1 FROM assignments WHERE dataset_id = ? LIMIT 1", [dataset_id]
        ).fetchone()
        return found is not None

    def replay_sample(self, sample_id: int, dataset_id: int | None = None) -> None:
        """Recompute a sample's cached states from its reviews (inside the caller's transaction)."""
        if dataset_id is None:
            dataset_id = self.scalar("SELECT dataset_id FROM samples WHERE id = ?", [sample_id])
        reviews = self.reviews_for(sample_id)
        assigned = self.dataset_assigned(dataset_id)
        tracks = tracks_in_force(reviews, assigned)
        self.conn.execute("DELETE FROM reviewer_state WHERE sample_id = ?", [sample_id])
        for track, review in tracks.items():
            self._set_track(dataset_id, track, review)
        standing = (
            settle(tracks, self.edit_texts(tracks.values())) if assigned else in_force(reviews)
        )
        self._set_state(sample_id, dataset_id, standing)

    def _set_track(self, dataset_id: int, track: Track, review: Review) -> None:
        self.conn.execute(
            "INSERT INTO reviewer_state (sample_id, kind, reviewer, dataset_id, status,"
            " review_id, candidate_id, annotator, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (sample_id, kind, reviewer) DO UPDATE SET dataset_id = excluded.dataset_id,"
            " status = excluded.status, review_id = excluded.review_id,"
            " candidate_id = excluded.candidate_id, annotator = excluded.annotator,"
            " decided_at = excluded.decided_at",
            [
                review.sample_id,
                track[0],
                track[1],
                dataset_id,
                STATUS_OF_DECISION[review.decision],
                review.id,
                to_db_candidate(review.candidate_id),
                review.annotator,
                review.created_at,
            ],
        )

    def tracks(self, sample_id: int) -> dict[Track, Review]:
        """The review in force on each track of a sample, from the cache (notes and tags empty)."""
        rows = self.query("SELECT * FROM reviewer_state WHERE sample_id = ?", [sample_id])
        return {
            (row["kind"], row["reviewer"]): Review(
                sample_id=sample_id,
                decision=DECISION_OF_STATUS[row["status"]],
                candidate_id=from_db_candidate(row["candidate_id"]),
                annotator=row["annotator"],
                id=row["review_id"],
                created_at=row["decided_at"],
                kind=row["kind"],
            )
            for row in rows
        }

    def _settled(self, sample_id: int) -> Review | None:
        tracks = self.tracks(sample_id)
        return settle(tracks, self.edit_texts(tracks.values()))

    def edit_texts(self, reviews: Iterable[Review]) -> dict[int, tuple[str, str, str]]:
        """The text of each edit these reviews accepted: two edits agree when it is the same."""
        ids = [r.candidate_id for r in reviews if r.decision == "edit" and r.candidate_id]
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT id, instruction, input, output FROM candidates"
            " WHERE id IN (SELECT value FROM json_each(?))",
            [json_list(ids)],
        )
        return {row[0]: tuple(row[1:]) for row in rows}

    def _set_state(self, sample_id: int, dataset_id: int, review: Review | None) -> None:
        if review is None:
            self.conn.execute("DELETE FROM sample_state WHERE sample_id = ?", [sample_id])
            return
        self.conn.execute(
            "INSERT INTO sample_state (sample_id, dataset_id, status, review_id,"
            " candidate_id, annotator, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (sample_id) DO UPDATE SET dataset_id = excluded.dataset_id,"
            " status = excluded.status, review_id = excluded.review_id,"
            " candidate_id = excluded.candidate_id, annotator = excluded.annotator,"
            " decided_at = excluded.decided_at",
            [
                sample_id,
                dataset_id,
                STATUS_OF_DECISION[review.decision],
                review.id,
                to_db_candidate(review.candidate_id),
                review.annotator,
                review.created_at,
            ],
        )

    def undo(
        self, sample_id: int, annotator: str = "", run_id: int | None = None, kind: str = ""
    ) -> Review:
        """Take back the decision in force for a sample (if there is none, nothing changes).

        On an assigned sample it is `annotator`'s own decision, or with kind "adjudication"
        the adjudication, that is taken back.
        """
        return self.add_review(
            Review(
                sample_id=sample_id, decision="undo", annotator=annotator, run_id=run_id, kind=kind
            )
        )

    def undo_run(self, run_id: int, annotator: str = "") -> int:
        """Undo, as one transaction, every decision of a bulk run that is still in force.

        In force: on an unassigned sample, the top of its one stack; on an assigned sample, the
        latest on its own track (an adjudication is undone by `annotator`; a reviewer's own
        decision, made before the dataset was assigned, only by an undo on that reviewer's
        track, which records its name and says who took it back in the note).
        """
        with self.transaction():
            rows = self.conn.execute(
                "SELECT r.sample_id, r.kind, r.annotator, s.dataset_id,"
                " EXISTS (SELECT 1 FROM sample_state st WHERE st.sample_id = r.sample_id"
                "  AND st.review_id = r.id) AS on_stack,"
                " EXISTS (SELECT 1 FROM reviewer_state rs WHERE rs.sample_id = r.sample_id"
                "  AND rs.review_id = r.id) AS on_track"
                " FROM reviews r JOIN samples s ON s.id = r.sample_id"
                " WHERE r.run_id = ? AND r.decision != 'undo' ORDER BY r.sample_id, r.id",
                [run_id],
            ).fetchall()
            assigned: dict[int, bool] = {}
            undone = 0
            for sample_id, kind, author, dataset_id, on_stack, on_track in rows:
                if dataset_id not in assigned:
                    assigned[dataset_id] = self.dataset_assigned(dataset_id)
                if not (on_track if assigned[dataset_id] else on_stack):
                    continue
                undo = Review(sample_id=sample_id, decision="undo", annotator=annotator, kind=kind)
                if assigned[dataset_id] and kind != ADJUDICATION:
                    undo.annotator = author
                    undo.note = f"bulk run {run_id} undone by {annotator or '(no name)'}"
                self._append(undo)
                undone += 1
        return undone

    def reviews_for(self, sample_id: int, annotator: str | None = None) -> list[Review]:
        """A sample's reviews, oldest first; with `annotator`, only that reviewer's own."""
        if annotator is None:
            rows = self.query("SELECT * FROM reviews WHERE sample_id = ? ORDER BY id", [sample_id])
        else:
            rows = self.query(
                "SELECT * FROM reviews WHERE sample_id = ? AND annotator = ? AND kind = ''"
                " ORDER BY id",
                [sample_id, annotator],
            )
        return [_review(row) for row in rows]

    def state(self, sample_id: int) -> SampleState:
        row = self.query_one("SELECT * FROM sample_state WHERE sample_id = ?", [sample_id])
        if row is None:
            return SampleState(sample_id=sample_id)
        row.pop("dataset_id")
        row["candidate_id"] = from_db_candidate(row["candidate_id"])
        return SampleState(**row)

    def reviewer_state(self, sample_id: int, reviewer: str) -> SampleState:
        """Where a sample stands for one reviewer: their own decision in force, if any."""
        row = self.query_one(
            "SELECT * FROM reviewer_state WHERE sample_id = ? AND kind = '' AND reviewer = ?",
            [sample_id, reviewer],
        )
        return SampleState(sample_id=sample_id) if row is None else _state(row)

    def states(self, dataset_id: int) -> dict[int, SampleState]:
        """The state of every decided sample of a dataset (absent ones are undecided)."""
        rows = self.query("SELECT * FROM sample_state WHERE dataset_id = ?", [dataset_id])
        found = {}
        for row in rows:
            row.pop("dataset_id")
            row["candidate_id"] = from_db_candidate(row["candidate_id"])
            found[row["sample_id"]] = SampleState(**row)
        return found

    def rebuild_states(self) -> None:
        """Recompute the state caches from the review log (they are derived data)."""
        with self.transaction():
            self.conn.execute("DELETE FROM sample_state")
            self.conn.execute("DELETE FROM reviewer_state")
            ids = [r[0] for r in self.conn.execute("SELECT DISTINCT sample_id FROM reviews")]
            for sample_id in ids:
                self.replay_sample(sample_id)
