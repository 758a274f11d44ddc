"""The review queue: what the Review page shows and does, as plain functions over the store.

A `ReviewSession` is one annotator's walk through a filtered, ordered queue of sample ids.
The queue is a snapshot taken when the filter changes (ids only); as the annotator moves on,
samples that no longer match the status filter (someone else decided them meanwhile) are
skipped. Every decision is written to the store before the session moves to the next sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfirmationNeeded, NotFoundError, ReflectionError
from ..records import (
    DERIVED_FLAGS,
    DRIFT_METRIC,
    IFD_METRIC,
    Candidate,
    Review,
    stored_id,
)
from ..records import REVIEW_STATUSES as STATUSES
from ..store import Store
from ..store.queue import VERSIONS, QueueQuery, ScoreRange
from .item import (
    METRIC_ORDER,
    ReviewItem,
    acceptance_warning,
    candidate_label,
    content_flags,
    default_candidate,
    item_flags,
    load_item,
    queue_reviewer,
    score_rows,
    suggested_decision,
)

__all__ = [
    "DERIVED_FLAGS",
    "FIELDS",
    "METRIC_ORDER",
    "QueueQuery",
    "ReviewItem",
    "ReviewSession",
    "SORTS",
    "STATUSES",
    "ScoreRange",
    "VERSIONS",
    "acceptance_warning",
    "candidate_label",
    "content_flags",
    "default_candidate",
    "flag_names",
    "item_flags",
    "load_item",
    "parse_tags",
    "queue_reviewer",
    "score_rows",
    "sort_query",
    "suggested_decision",
]

FIELDS = ("instruction", "input", "output")
# Queue orders offered to annotators: label -> (sort key, metric, descending).
SORTS: dict[str, tuple[str, str, bool]] = {
    "Source order": ("position", "", False),
    "Suggestion confidence (high first)": ("confidence", "", True),
    "IFD change (largest drop first)": ("change", IFD_METRIC, False),
    "IFD of original (high first)": ("original", IFD_METRIC, True),
    "Drift (least similar first)": ("candidate", DRIFT_METRIC, False),
    "Judge of original (low first)": ("original", "judge", False),
    "Newest samples first": ("id", "", True),
}
WINDOW = 500  # queue ids loaded at a time
UNDO_WINDOW = 50  # how many session decisions can be taken back, newest first
_LOOKAHEAD = 50  # ids checked at a time when skipping samples decided by others


def sort_query(label: str, **filters) -> QueueQuery:
    """A QueueQuery with the order named by a SORTS label and the given filters."""
    if label not in SORTS:
        raise ReflectionError(f"unknown order {label!r} (expected one of {', '.join(SORTS)})")
    sort, metric, descending = SORTS[label]
    return QueueQuery(sort=sort, sort_metric=metric, descending=descending, **filters)


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags, trimmed, empty ones and repeats dropped, order kept."""
    seen: dict[str, None] = {}
    for tag in text.split(","):
        if tag.strip():
            seen.setdefault(tag.strip(), None)
    return list(seen)


def flag_names(store: Store, dataset_id: int) -> list[str]:
    """Every flag a queue can filter by: derived flags, then the dataset's import flags."""
    return [*DERIVED_FLAGS, *store.sample_flag_names(dataset_id)]


@dataclass
class ReviewSession:
    """One annotator's position in a queue snapshot, and the decisions they can take back.

    A query with a `reviewer` is that reviewer's assigned queue: statuses are their own, and
    only samples actively assigned to them can be shown or decided.
    """

    dataset_id: int
    query: QueueQuery
    ids: list[int] = field(default_factory=list)  # the queue's ids loaded so far, in order
    index: int = 0
    more: bool = False  # whether the queue may hold ids beyond those loaded
    undo_stack: list[tuple[int, int]] = field(default_factory=list)  # (sample_id, review_id)

    @classmethod
    def open(cls, store: Store, dataset_id: int, query: QueueQuery) -> ReviewSession:
        """A session on the queue `query` selects now, at its first sample."""
        session = cls(dataset_id=dataset_id, query=query)
        session.reload(store, query)
        return session

    def reload(self, store: Store, query: QueueQuery) -> None:
        """Start again at the top of the queue `query` selects now."""
        self.query, self.ids, self.index, self.more = query, [], 0, True
        self._extend(store)

    def _extend(self, store: Store) -> bool:
        """Load the queue's next WINDOW ids (after those loaded); False if there were none.

        Loading a window at a time keeps a filter change fast on a 100,000-sample dataset.
        """
        if not self.more:
            return False
        found = store.queue_ids(self.dataset_id, self.query, limit=WINDOW, exclude=self.ids)
        self.ids.extend(found)
        self.more = len(found) == WINDOW
        return bool(found)

    @property
    def size_label(self) -> str:
        """How many samples the queue holds: "64", or "500+" while more may follow."""
        return f"{len(self.ids):,}{'+' if self.more else ''}"

    @property
    def current_id(self) -> int | None:
        return self.ids[self.index] if 0 <= self.index < len(self.ids) else None

    @property
    def done(self) -> bool:
        """True when the session has moved past the end of its queue."""
        return self.index >= len(self.ids) and not self.more

    def next(self, store: Store) -> int | None:
        """Move to the next sample still matching the status filter; None at the end."""
        self.index = min(self.index + 1, len(self.ids))
        wanted = set(self.query.statuses)
        while True:
            if self.index >= len(self.ids) and not self._extend(store):
                return None
            if not wanted:
                return self.current_id
            window = self.ids[self.index : self.index + _LOOKAHEAD]
            statuses = store.statuses_of(window, self.reviewer)
            for offset, sample_id in enumerate(window):
                if statuses[sample_id] in wanted:
                    self.index += offset
                    return self.current_id
            self.index += len(window)

    def previous(self) -> int | None:
        """Move back one sample (shown whatever its status, so it can be re-decided)."""
        self.index = max(0, min(self.index - 1, len(self.ids) - 1))
        return self.current_id

    @property
    def reviewer(self) -> str | None:
        return self.query.reviewer

    def jump(self, store: Store, sample_id: int) -> None:
        """Show `sample_id` next, even if the filter leaves it out; it must be in the dataset
        (and in an assigned queue, assigned to its reviewer)."""
        if store.sample_dataset(sample_id) != self.dataset_id:
            raise NotFoundError(f"no sample {sample_id} in this dataset")
        if self.reviewer is not None and not store.is_assigned(
            self.dataset_id, sample_id, self.reviewer
        ):
            raise NotFoundError(f"sample {sample_id} is not assigned to {self.reviewer}")
        if sample_id in self.ids:
            self.index = self.ids.index(sample_id)
        else:
            self.index = min(self.index, len(self.ids))
            self.ids.insert(self.index, sample_id)

    def decide(
        self,
        store: Store,
        decision: str,
        *,
        annotator: str,
        candidate_id: int | None = None,
        note: str = "",
        tags: list[str] | None = None,
        confirmed: bool = False,
    ) -> Review:
        """Record a decision on the current sample (committed), then move to the next one.

        Accepting an empty output or a truncated reply raises ConfirmationNeeded (its message
        says why) unless `confirmed`.
        """
        sample_id = self.current_id
        if sample_id is None:
            raise ReflectionError("the queue is finished: there is no sample to decide on")
        if decision == "undo":
            raise ReflectionError("use undo_last() to take a decision back")
        if decision == "accept" and not confirmed:
            candidate = store.candidate(candidate_id) if candidate_id else None
            warning = acceptance_warning(store.sample(sample_id), candidate)
            if warning:
                raise ConfirmationNeeded(warning)
        review = Review(
            sample_id=sample_id,
            decision=decision,
            candidate_id=candidate_id,
            annotator=annotator,
            note=note,
            tags=list(tags or []),
        )
        # Checked inside the write: a reassignment cannot slip in between.
        with store.transaction():
            if self.reviewer is not None and not store.is_assigned(
                self.dataset_id, sample_id, self.reviewer
            ):
                raise ReflectionError(
                    f"sample {sample_id} is no longer assigned to {self.reviewer}"
                )
            store.add_review(review)
        self.undo_stack = [*self.undo_stack, (sample_id, stored_id(review))][-UNDO_WINDOW:]
        self.next(store)
        return review

    def save_edit(
        self,
        store: Store,
        base: Candidate | None,
        text: dict[str, str],
        *,
        annotator: str,
        note: str = "",
        tags: list[str] | None = None,
    ) -> Review:
        """Save the annotator's edit as a new candidate and accept it, in one transaction."""
        sample_id = self.current_id
        if sample_id is None:
            raise ReflectionError("the queue is finished: there is no sample to edit")
        if not text.get("instruction", "").strip() or not text.get("output", "").strip():
            raise ReflectionError("an edit needs an instruction and an output")
        with store.transaction():
            edit = Candidate(
                sample_id=sample_id,
                kind="edit",
                parent_id=base.id if base else None,
                instruction=text["instruction"],
                input=text.get("input", ""),
                output=text["output"],
                annotator=annotator,
                origin={"edited_from": base.id if base else "original"},
            )
            store.add_candidate(edit)
            return self.decide(
                store, "edit", annotator=annotator, candidate_id=edit.id, note=note, tags=tags
            )

    def undo_last(self, store: Store, annotator: str) -> str:
        """Take back this session's latest decision and show that sample again; says what it did."""
        if not self.undo_stack:
            return "Nothing to undo in this session."
        sample_id, review_id = self.undo_stack[-1]
        self.undo_stack = self.undo_stack[:-1]
        if self.reviewer is None:
            state = store.state(sample_id)
        else:
            state = store.reviewer_state(sample_id, self.reviewer)
        self.jump(store, sample_id)
        if state.review_id != review_id:
            return (
                f"Sample {sample_id} was decided again since (by {state.annotator or 'someone'});"
                " nothing undone."
            )
        store.undo(sample_id, annotator=annotator)
        return f"Undid the decision on sample {sample_id}."
