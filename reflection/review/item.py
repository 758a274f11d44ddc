"""One sample as the Review page shows it: its versions, scores, flags and suggestion.

Pure functions over a loaded `ReviewItem` (one read of the store per sample): which version to
show first, the score table, the flags with their reasons, and whether accepting a version
needs a second yes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import (
    DRIFT_METRIC,
    DRIFT_THRESHOLD,
    IFD_METRIC,
    MISALIGNED_IFD,
    PARSE_FAILED_STATUSES,
    Candidate,
    Review,
    Sample,
    SampleState,
    Score,
    Suggestion,
    compared,
)
from ..scoring.checks import version_flags
from ..store import Store

# Metrics shown first, in this order; any others follow alphabetically.
METRIC_ORDER = ("ifd_ppl", "rifd_ppl", "judge", "drift", "words_instruction", "words_output")


@dataclass
class ReviewItem:
    """Everything the Review page shows about one sample."""

    sample: Sample
    candidates: list[Candidate]
    scores: list[Score]
    suggestion: Suggestion | None
    state: SampleState
    history: list[Review]

    def candidate(self, candidate_id: int | None) -> Candidate | None:
        for candidate in self.candidates:
            if candidate.id == candidate_id:
                return candidate
        return None


def load_item(store: Store, sample_id: int, reviewer: str | None = None) -> ReviewItem:
    """One sample with its candidates, scores, suggestion, state and review history.

    With `reviewer` (an assigned queue), the review is blind: the state and history are that
    reviewer's own, and other reviewers' edits are left out of the candidates.
    """
    candidates = store.candidates_for(sample_id)
    if reviewer is None:
        return ReviewItem(
            sample=store.sample(sample_id),
            candidates=candidates,
            scores=store.scores_for(sample_id),
            suggestion=store.suggestion(sample_id),
            state=store.state(sample_id),
            history=store.reviews_for(sample_id),
        )
    return ReviewItem(
        sample=store.sample(sample_id),
        candidates=[c for c in candidates if c.kind != "edit" or c.annotator == reviewer],
        scores=store.scores_for(sample_id),
        suggestion=store.suggestion(sample_id),
        state=store.reviewer_state(sample_id, reviewer),
        history=store.reviews_for(sample_id, annotator=reviewer),
    )


def queue_reviewer(store: Store, dataset_id: int, annotator: str) -> str | None:
    """Whose assigned queue `annotator` works through: theirs on an assigned dataset, else
    None (one shared queue, as for every unassigned dataset)."""
    return annotator if store.dataset_assigned(dataset_id) else None


def default_candidate(item: ReviewItem) -> Candidate | None:
    """The candidate to show first: the one in force, else the suggested, else the newest ok."""
    for wanted in (item.state.candidate_id, item.suggestion and item.suggestion.candidate_id):
        if wanted and item.candidate(wanted):
            return item.candidate(wanted)
    usable = [c for c in item.candidates if c.status == "ok"] or item.candidates
    return usable[-1] if usable else None


def suggested_decision(item: ReviewItem) -> tuple[str, int | None] | None:
    """What following the suggestion records: ("accept", version) or ("reject", None)."""
    s = item.suggestion
    if s is None or (s.candidate_id and item.candidate(s.candidate_id) is None):
        return None
    if getattr(s, "decision", "accept") == "reject":
        return ("reject", None)
    return ("accept", s.candidate_id)


def candidate_label(candidate: Candidate | None) -> str:
    """How a version is named in selectors: "original" or "#12 response (ok)"."""
    if candidate is None:
        return "original"
    by = f" by {candidate.annotator}" if candidate.kind == "edit" and candidate.annotator else ""
    return f"#{candidate.id} {candidate.kind}{by} ({candidate.status})"


def _metric_rank(name: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), name)


def score_rows(item: ReviewItem, candidate: Candidate | None) -> list[dict]:
    """Scores of the original and of `candidate`, one row per metric (and scorer if several).

    Rows: metric, original, candidate, change (candidate minus original, None if either is
    missing). Important metrics (IFD, r-IFD, judge, drift, lengths) come first.
    """
    cid = candidate.id if candidate else None
    scorers: dict[str, set[str]] = {}
    values: dict[tuple[str, str, int | None], Score] = {}
    for score in item.scores:
        if score.candidate_id not in (None, cid):
            continue
        scorers.setdefault(score.metric, set()).add(score.scorer)
        key = (score.metric, score.scorer, score.candidate_id)
        if key not in values or (score.id or 0) > (values[key].id or 0):
            values[key] = score
    rows = []
    for metric in sorted(scorers, key=_metric_rank):
        for scorer in sorted(scorers[metric]):
            original = values.get((metric, scorer, None))
            shown = values.get((metric, scorer, cid)) if cid else None
            a = original.value if original else None
            b = shown.value if shown else None
            label = metric if len(scorers[metric]) == 1 or not scorer else f"{metric} [{scorer}]"
            change = b - a if a is not None and b is not None else None
            rows.append({"metric": label, "original": a, "candidate": b, "change": change})
    return rows


def _where(candidate_id: int | None) -> str:
    return "original" if candidate_id is None else f"#{candidate_id}"


def content_flags(item: ReviewItem) -> dict[int | None, dict[str, str]]:
    """Each version's content flags (checks, relevance, a judge's low rating) with reasons."""
    found: dict[int | None, dict[str, str]] = {}
    for score in item.scores:
        flags = version_flags([score])
        if flags:
            found.setdefault(score.candidate_id, {}).update(flags)
    return found


def item_flags(item: ReviewItem) -> list[str]:
    """Problems worth a reviewer's eye, each with the version it concerns."""
    flags = [f"{flag} (import)" for flag in item.sample.flags]
    checked = content_flags(item)
    for candidate_id, found in checked.items():
        flags += [f"{flag}: {why} ({_where(candidate_id)})" for flag, why in sorted(found.items())]
    for score in item.scores:
        where = _where(score.candidate_id)
        if score.value is None:
            continue
        if score.metric == IFD_METRIC and score.value >= MISALIGNED_IFD:
            value, limit = compared(score.value, "≥", MISALIGNED_IFD, digits=2, exact_b=True)
            flags.append(f"misaligned: IFD {value} ≥ {limit} ({where})")
        if score.metric == DRIFT_METRIC and score.value < DRIFT_THRESHOLD:
            value, limit = compared(score.value, "<", DRIFT_THRESHOLD, digits=2, exact_b=True)
            flags.append(f"drift: similarity {value} < {limit} ({where})")
    for candidate in item.candidates:
        if candidate.status in PARSE_FAILED_STATUSES:
            flags.append(f"parse {candidate.status} (#{candidate.id})")
        elif candidate.status == "truncated" and "truncated" not in checked.get(candidate.id, {}):
            flags.append(f"truncated (#{candidate.id})")
    if not item.candidates:
        flags.append("no candidate")
    return list(dict.fromkeys(flags))


def acceptance_warning(sample: Sample, candidate: Candidate | None) -> str | None:
    """Why accepting this version needs a second yes (empty output, truncated reply), or None."""
    label = candidate_label(candidate)
    output = candidate.output if candidate is not None else sample.output
    if not output.strip():
        return f"{label} has an empty output: accepted, it is exported as an empty answer."
    if candidate is not None and candidate.status == "truncated":
        return f"{label} was cut off at the token limit: its answer may stop mid-sentence."
    return None
