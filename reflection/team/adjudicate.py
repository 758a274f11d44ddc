"""Adjudication: an admin's final decision on a sample its reviewers disagree on.

The queue holds the samples whose reviewers' decisions in force disagree and that have no
adjudication in force, in source order. An adjudication is a review of kind `adjudication`
on the sample's shared adjudication track: it settles the sample (store/tracks.py), counts
for `--consensus adjudicated`, is never a reviewer's vote in the agreement statistics, and
is recorded in the audit log. Undoing it (kind `adjudication`) reopens the dispute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ReflectionError
from ..records import Candidate, Review, Sample
from ..store import Store
from ..store.tracks import ADJUDICATION
from .consensus import Vote, sample_votes

ADJUDICATION_DECISIONS = ("accept", "edit", "reject")


def disputes(
    store: Store, dataset_id: int, *, adjudicated: bool = False, limit: int | None = None
) -> list[int]:
    """Ids of the samples whose reviewers disagree (with `adjudicated`, settled ones too)."""
    return store.disputed_sample_ids(dataset_id, adjudicated=adjudicated, limit=limit)


@dataclass
class ReviewerDecision:
    """One reviewer's decision in force, with the version it chose and its note."""

    reviewer: str
    status: str
    candidate: Candidate | None  # None: the original (or a rejection)
    decided_at: str
    note: str = ""
    candidate_id: int | None = None

    def decision(self) -> tuple[str, int | None]:
        """What adopting this decision records: (decision, candidate id)."""
        if self.status == "rejected":
            return ("reject", None)
        return ("edit" if self.status == "edited" else "accept", self.candidate_id)


@dataclass
class Dispute:
    """Everything the adjudication page shows about one sample."""

    sample: Sample
    candidates: list[Candidate]
    decisions: list[ReviewerDecision] = field(default_factory=list)  # by reviewer name
    adjudication: Vote | None = None

    def candidate(self, candidate_id: int | None) -> Candidate | None:
        return next((c for c in self.candidates if c.id == candidate_id), None)


def load_dispute(store: Store, sample_id: int) -> Dispute:
    """A sample with every reviewer's decision in force and the adjudication, if any."""
    sample = store.sample(sample_id)
    candidates = store.candidates_for(sample_id)
    dispute = Dispute(sample, candidates)
    notes = {r.id: r.note for r in store.reviews_for(sample_id)}
    assert sample.dataset_id is not None  # every stored sample belongs to a dataset
    for found in sample_votes(store, sample.dataset_id, [sample_id]):
        dispute.adjudication = found.adjudication
        for vote in sorted(found.votes, key=lambda v: v.reviewer):
            if vote.status == "skipped":
                continue
            dispute.decisions.append(
                ReviewerDecision(
                    reviewer=vote.reviewer,
                    status=vote.status,
                    candidate=dispute.candidate(vote.candidate_id),
                    decided_at=vote.decided_at,
                    note=notes.get(vote.review_id, ""),
                    candidate_id=vote.candidate_id,
                )
            )
    return dispute


def adjudicate(
    store: Store,
    sample_id: int,
    admin: str,
    decision: str,
    candidate_id: int | None = None,
    note: str = "",
) -> Review:
    """Record the admin's final decision on a sample (and the audit event), as one."""
    if decision not in ADJUDICATION_DECISIONS:
        raise ReflectionError(
            f"an adjudication is one of {', '.join(ADJUDICATION_DECISIONS)}, not {decision!r}"
        )
    if decision == "reject":
        candidate_id = None
    review = Review(
        sample_id=sample_id,
        decision=decision,
        candidate_id=candidate_id,
        annotator=admin,
        note=note,
        kind=ADJUDICATION,
    )
    with store.transaction():
        store.add_review(review)
        store.add_audit_event(
            admin,
            "adjudicate",
            f"sample {sample_id}",
            dataset_id=store.sample_dataset(sample_id),
            detail={"decision": decision, "candidate_id": candidate_id, "review_id": review.id},
        )
    return review


def undo_adjudication(store: Store, sample_id: int, admin: str) -> Review:
    """Take back the adjudication in force on a sample (the dispute reopens)."""
    with store.transaction():
        review = store.undo(sample_id, annotator=admin, kind=ADJUDICATION)
        store.add_audit_event(
            admin,
            "adjudicate",
            f"sample {sample_id}",
            dataset_id=store.sample_dataset(sample_id),
            detail={"decision": "undo", "review_id": review.id},
        )
    return review
