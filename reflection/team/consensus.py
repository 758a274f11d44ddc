"""What counts when a sample has several reviewers' decisions: the consensus modes.

Votes are the reviewers' decisions in force; skips are no vote. Two votes agree when they
accept the same version, both reject, or both accept an edit with the same text.

- `majority`: the decision more than half the votes share (the latest such vote);
- `unanimous`: the decision every vote shares;
- `adjudicated`: the admin's adjudication where there is one, else as `unanimous`. This is
  also how the store settles an assigned sample's state (store/tracks.py).

A sample with no vote, or whose votes reach no consensus, is undecided: the export's
undecided policy applies to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import ReflectionError
from ..store import Store
from ..store.reviews import DECISION_OF_STATUS
from ..store.tracks import ADJUDICATION, vote_key

CONSENSUS_MODES = ("majority", "unanimous", "adjudicated")


@dataclass(frozen=True)
class Vote:
    """One decision in force on a sample: a reviewer's, or the adjudication."""

    reviewer: str
    status: str  # accepted, edited, rejected, skipped
    candidate_id: int | None
    annotator: str
    decided_at: str
    review_id: int
    kind: str = ""
    edit_text: str | None = None

    @property
    def key(self):
        texts = {self.candidate_id or 0: self.edit_text} if self.edit_text is not None else {}
        return vote_key(DECISION_OF_STATUS[self.status], self.candidate_id, texts)

    def as_dict(self) -> dict:
        return {
            "reviewer": self.annotator if self.kind == ADJUDICATION else self.reviewer,
            "decision": self.status,
            "candidate_id": self.candidate_id,
            "decided_at": self.decided_at,
            "adjudication": self.kind == ADJUDICATION,
        }


@dataclass
class SampleVotes:
    sample_id: int
    votes: list[Vote] = field(default_factory=list)  # reviewers', by time
    adjudication: Vote | None = None


def decide(sample: SampleVotes, mode: str) -> Vote | None:
    """The vote that counts for a sample under `mode`, or None (undecided)."""
    if mode not in CONSENSUS_MODES:
        raise ReflectionError(f"unknown consensus {mode!r}; expected {', '.join(CONSENSUS_MODES)}")
    if mode == "adjudicated" and sample.adjudication is not None:
        return sample.adjudication
    votes = [v for v in sample.votes if v.key is not None]
    if not votes:
        return None
    counts = Counter(v.key for v in votes)
    key, n = counts.most_common(1)[0]
    wanted = n * 2 > len(votes) if mode == "majority" else n == len(votes)
    return [v for v in votes if v.key == key][-1] if wanted else None


def sample_votes(
    store: Store, dataset_id: int, sample_ids: Iterable[int] | None = None
) -> Iterator[SampleVotes]:
    """Every sample of the dataset (or of `sample_ids`) with a decision in force, with its
    votes, by sample id."""
    current: SampleVotes | None = None
    for row in store.track_rows(dataset_id, sample_ids):
        if current is None or current.sample_id != row["sample_id"]:
            if current is not None:
                yield current
            current = SampleVotes(row["sample_id"])
        vote = Vote(
            reviewer=row["reviewer"],
            status=row["status"],
            candidate_id=row["candidate_id"] or None,
            annotator=row["annotator"],
            decided_at=row["decided_at"],
            review_id=row["review_id"],
            kind=row["kind"],
            edit_text=row["edit_text"],
        )
        if vote.kind == ADJUDICATION:
            current.adjudication = vote
        else:
            current.votes.append(vote)
    if current is not None:
        yield current


def is_disputed(sample: SampleVotes) -> bool:
    """Whether the reviewers' votes on a sample disagree."""
    return len({v.key for v in sample.votes if v.key is not None}) > 1


def consensus_votes(
    samples: Iterable[SampleVotes], mode: str
) -> Iterator[tuple[SampleVotes, Vote | None]]:
    """Each sample with the vote that counts under `mode`."""
    for sample in samples:
        yield sample, decide(sample, mode)
