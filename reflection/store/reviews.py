"""Reviews are append-only; `sample_state` caches the review in force for each sample.

The state of a sample is found by replaying its reviews as a stack: every decision pushes,
an `undo` pops. So undo restores the decision before, and a second undo the one before that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import NotFoundError, ReflectionError
from ..records import DECISIONS, UNDECIDED, Review, SampleState
from .base import StoreBase, dumps, from_db_candidate, loads, now, to_db_candidate

STATUS_OF_DECISION = {
    "accept": "accepted",
    "edit": "edited",
    "reject": "rejected",
    "skip": "skipped",
}


def _review(row: dict[str, Any]) -> Review:
    row = dict(row)
    row["tags"] = loads(row["tags"], [])
    row["candidate_id"] = from_db_candidate(row["candidate_id"])
    return Review(**row)


def _in_force(reviews: list[Review]) -> Review | None:
    stack: list[Review] = []
    for review in reviews:
        if review.decision == "undo":
            if stack:
                stack.pop()
        else:
            stack.append(review)
    return stack[-1] if stack else None


class ReviewStore(StoreBase):
    def add_review(self, review: Review) -> Review:
        """Append one decision and update the sample's state, in one transaction."""
        return self.add_reviews([review])[0]

    def add_reviews(self, reviews: Iterable[Review]) -> list[Review]:
        """Append decisions (all or none); each review gets its id and time."""
        reviews = list(reviews)
        with self.transaction():
            for review in reviews:
                self._append(review)
        return reviews

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
        review.created_at = review.created_at or now()
        cursor = self.conn.execute(
            "INSERT INTO reviews (sample_id, decision, candidate_id, annotator, note, tags,"
            " run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                review.sample_id,
                review.decision,
                to_db_candidate(review.candidate_id),
                review.annotator,
                review.note,
                dumps(review.tags),
                review.run_id,
                review.created_at,
            ],
        )
        review.id = cursor.lastrowid
        in_force = (
            review if review.decision != "undo" else _in_force(self.reviews_for(review.sample_id))
        )
        self._set_state(review.sample_id, sample["dataset_id"], in_force)

    def _set_state(self, sample_id: int, dataset_id: int, review: Review | None) -> None:
        if review is None:
            self.conn.execute("DELETE FROM sample_state WHERE sample_id = ?", [sample_id])
            return
        self.conn.execute(
            "INSERT OR REPLACE INTO sample_state (sample_id, dataset_id, status, review_id,"
            " candidate_id, annotator, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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

    def undo(self, sample_id: int, annotator: str = "", run_id: int | None = None) -> Review:
        """Take back the decision in force for a sample (if there is none, nothing changes)."""
        return self.add_review(
            Review(sample_id=sample_id, decision="undo", annotator=annotator, run_id=run_id)
        )

    def undo_run(self, run_id: int, annotator: str = "") -> int:
        """Undo, as one transaction, every decision of a bulk run that is still in force."""
        with self.transaction():
            rows = self.conn.execute(
                "SELECT st.sample_id FROM sample_state st JOIN reviews r ON r.id = st.review_id"
                " WHERE r.run_id = ? ORDER BY st.sample_id",
                [run_id],
            ).fetchall()
            for (sample_id,) in rows:
                self._append(Review(sample_id=sample_id, decision="undo", annotator=annotator))
        return len(rows)

    def reviews_for(self, sample_id: int) -> list[Review]:
        rows = self.query("SELECT * FROM reviews WHERE sample_id = ? ORDER BY id", [sample_id])
        return [_review(row) for row in rows]

    def state(self, sample_id: int) -> SampleState:
        row = self.query_one("SELECT * FROM sample_state WHERE sample_id = ?", [sample_id])
        if row is None:
            return SampleState(sample_id=sample_id)
        row.pop("dataset_id")
        row["candidate_id"] = from_db_candidate(row["candidate_id"])
        return SampleState(**row)

    def states(self, dataset_id: int) -> dict[int, SampleState]:
        """The state of every decided sample of a dataset (absent ones are undecided)."""
        rows = self.query("SELECT * FROM sample_state WHERE dataset_id = ?", [dataset_id])
        found = {}
        for row in rows:
            row.pop("dataset_id")
            row["candidate_id"] = from_db_candidate(row["candidate_id"])
            found[row["sample_id"]] = SampleState(**row)
        return found

    def status_counts(self, dataset_id: int | None = None) -> dict[str, int]:
        """How many samples are undecided, accepted, edited, rejected or skipped."""
        where, params = ("WHERE dataset_id = ?", [dataset_id]) if dataset_id else ("", [])
        counts = {UNDECIDED: 0, **{status: 0 for status in STATUS_OF_DECISION.values()}}
        for status, n in self.conn.execute(
            f"SELECT status, count(*) FROM sample_state {where} GROUP BY status", params
        ):
            counts[status] = n
        total = self.scalar(f"SELECT count(*) FROM samples {where}", params)
        counts[UNDECIDED] = total - sum(counts.values())
        return counts

    def rebuild_states(self) -> None:
        """Recompute the state cache from the review log (it is derived data)."""
        with self.transaction():
            self.conn.execute("DELETE FROM sample_state")
            ids = [r[0] for r in self.conn.execute("SELECT DISTINCT sample_id FROM reviews")]
            for sample_id in ids:
                dataset_id = self.scalar("SELECT dataset_id FROM samples WHERE id = ?", [sample_id])
                self._set_state(sample_id, dataset_id, _in_force(self.reviews_for(sample_id)))
