"""Which reviews are in force: the replay of a sample's append-only reviews, pure Python.

A sample's reviews fall on *tracks*. Each reviewer has a track of their own decisions, and
admins share one adjudication track (reviews of kind `adjudication`). What stands on each
track is cached in `reviewer_state`; what stands for the sample as a whole in `sample_state`.

- A sample of an unassigned dataset (no row in `assignments`) replays as it always has: one
  stack for all its reviews, where an `undo` pops the latest decision whoever made it. The
  sample's state is the top of that stack; a reviewer's track holds their latest review
  still on it.
- A sample of an assigned dataset keeps one stack per track (its reviews replay so from the
  dataset's first assignment on): a reviewer's `undo` takes back their own
  latest decision, never another reviewer's. The sample's state is *settled*: the
  adjudication in force if there is one; else the decision every reviewer who decided agrees
  on (the latest of them); else none, so a disputed sample reads as undecided until an admin
  adjudicates. Skips are not votes: a sample only skipped reads as skipped.

Two edits agree when their text is the same; two acceptances when they chose the same version.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from ..records import Review

ADJUDICATION = "adjudication"
# Review kinds: "" a reviewer's own decision; "adjudication" an admin's final decision.
REVIEW_KINDS = ("", ADJUDICATION)

STATUS_OF_DECISION = {
    "accept": "accepted",
    "edit": "edited",
    "reject": "rejected",
    "skip": "skipped",
}

Track = tuple[str, str]  # (kind, reviewer); the adjudication track's reviewer is ""


def track_of(review: Review) -> Track:
    """The track a review falls on."""
    if review.kind == ADJUDICATION:
        return (ADJUDICATION, "")
    return ("", review.annotator)


def in_force(reviews: Iterable[Review]) -> Review | None:
    """The top of the one shared stack: every decision pushes, an `undo` pops."""
    stack = _shared_stack(reviews)
    return stack[-1] if stack else None


def _shared_stack(reviews: Iterable[Review]) -> list[Review]:
    stack: list[Review] = []
    for review in reviews:
        if review.decision == "undo":
            if stack:
                stack.pop()
        else:
            stack.append(review)
    return stack


def tracks_in_force(reviews: Iterable[Review], assigned: bool) -> dict[Track, Review]:
    """The review in force on each track of one sample (tracks with none are left out)."""
    if not assigned:
        found: dict[Track, Review] = {}
        for review in _shared_stack(reviews):
            found[track_of(review)] = review
        return found
    stacks: dict[Track, list[Review]] = {}
    for review in reviews:
        stack = stacks.setdefault(track_of(review), [])
        if review.decision == "undo":
            if stack:
                stack.pop()
        else:
            stack.append(review)
    return {track: stack[-1] for track, stack in stacks.items() if stack}


def vote_key(
    decision: str, candidate_id: int | None, edit_texts: Mapping[int, Hashable]
) -> Hashable | None:
    """What two decisions must share to agree (None for a skip, which is no vote)."""
    if decision == "accept":
        return ("accept", candidate_id or 0)
    if decision == "reject":
        return ("reject",)
    if decision == "edit":
        return ("edit", edit_texts.get(candidate_id or 0, candidate_id))
    return None


def settle(
    tracks: Mapping[Track, Review], edit_texts: Mapping[int, Hashable] | None = None
) -> Review | None:
    """The review that stands for an assigned sample: see the module docstring."""
    edit_texts = edit_texts or {}
    adjudication = tracks.get((ADJUDICATION, ""))
    if adjudication is not None:
        return adjudication
    reviews = sorted(tracks.values(), key=lambda r: r.id or 0)
    votes = [r for r in reviews if vote_key(r.decision, r.candidate_id, edit_texts) is not None]
    if not votes:
        return reviews[-1] if reviews else None  # only skips: the latest skip
    keys = {vote_key(r.decision, r.candidate_id, edit_texts) for r in votes}
    return votes[-1] if len(keys) == 1 else None
