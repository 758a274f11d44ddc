"""Export the curated set: each sample's chosen version, with optional provenance.

The latest review in force decides: accepted → the chosen version (the original, a reflected
candidate or a human edit); rejected → left out. Undecided samples (never reviewed, skipped, or
undone) follow a policy: `skip` leaves them out, `original` keeps the original, `suggested`
keeps the version the selection rules suggest (the original where there is no suggestion,
nothing where the suggestion is to leave the sample out).
The same database state always gives the same bytes.

When a sample has several reviewers' decisions, `consensus` says which counts (see
reflection.team.consensus): `majority`, `unanimous`, or `adjudicated` (the admin's decision,
else unanimous). A sample they leave without a decision follows the undecided policy (and is
counted as `disputed` when its reviewers disagree). Without `consensus`, the decision in force
counts, as above: for an assigned sample that is the adjudicated consensus (store/tracks.py).
With a consensus and provenance, every reviewer's decision is listed with the record.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExportError, ReflectionError
from ..formats import format_for_path, to_record, write_dataset
from ..progress import Progress, quiet
from ..records import Candidate, Sample, SampleState, Suggestion, stored_id
from ..store import Store
from ..team.consensus import CONSENSUS_MODES, consensus_votes, is_disputed, sample_votes

UNDECIDED_POLICIES = ("skip", "original", "suggested")


@dataclass
class Chosen:
    """One sample's exported version and why it was chosen."""

    sample: Sample
    candidate: Candidate | None
    reason: str  # accepted, edited, undecided-original, suggested, suggested-reject
    annotator: str = ""
    decided_at: str = ""
    rule: str = ""
    consensus: str = ""  # the consensus mode that chose it, if one did
    reviews: list[dict[str, Any]] | None = None  # every reviewer's decision, with a consensus
    disputed: bool = False  # its reviewers disagree and no consensus was reached

    def version(self) -> dict[str, Any]:
        source = self.candidate or self.sample
        return {
            "instruction": source.instruction,
            "input": source.input,
            "output": source.output,
            # Candidates rewrite the last turn; the conversation before it stays the sample's.
            "system": self.sample.system,
            "history": self.sample.history,
        }

    def provenance(self, dataset: str) -> dict[str, Any]:
        return {
            "sample_id": self.sample.id,
            "dataset": dataset,
            "source": self.sample.source,
            "position": self.sample.position,
            "version": "original" if self.candidate is None else self.candidate.kind,
            "candidate_id": self.candidate.id if self.candidate else None,
            "decision": self.reason,
            "rule": self.rule,
            "annotator": self.annotator,
            "decided_at": self.decided_at,
            **({"consensus": self.consensus, "reviews": self.reviews} if self.consensus else {}),
        }


@dataclass
class ExportResult:
    path: Path | None
    format: str
    written: int
    counts: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None


def _consensus_states(
    store: Store, dataset_id: int, mode: str
) -> tuple[dict[int, SampleState], dict[int, list[dict[str, Any]]], set[int]]:
    """The decision `mode` picks for each sample, every sample's votes, and the disputed."""
    states: dict[int, SampleState] = {}
    votes: dict[int, list[dict[str, Any]]] = {}
    disputed: set[int] = set()
    for sample, vote in consensus_votes(sample_votes(store, dataset_id), mode):
        listed = [*sample.votes, *([sample.adjudication] if sample.adjudication else [])]
        votes[sample.sample_id] = [v.as_dict() for v in listed]
        if vote is not None:
            states[sample.sample_id] = SampleState(
                sample.sample_id, vote.status, vote.review_id, vote.candidate_id,
                vote.annotator, vote.decided_at,
            )  # fmt: skip
        elif is_disputed(sample):
            disputed.add(sample.sample_id)
    return states, votes, disputed


def _check_policies(undecided: str, consensus: str | None) -> None:
    if undecided not in UNDECIDED_POLICIES:
        raise ReflectionError(
            f"unknown undecided policy {undecided!r}; expected {', '.join(UNDECIDED_POLICIES)}"
        )
    if consensus is not None and consensus not in CONSENSUS_MODES:
        raise ReflectionError(
            f"unknown consensus {consensus!r}; expected {', '.join(CONSENSUS_MODES)}"
        )


def chosen_versions(
    store: Store, dataset: str | int, undecided: str = "skip", consensus: str | None = None
) -> Iterator[Chosen]:
    """Each sample's exported version in source order, read a chunk at a time; `counts` in
    export_records tallies them. Without a consensus the decision in force counts (the
    sample's state); with one, the decision the consensus picks from every reviewer's."""
    _check_policies(undecided, consensus)
    ds = store.dataset(dataset)
    forced: dict[int, SampleState] | None = None
    votes: dict[int, list[dict[str, Any]]] = {}
    disputed: set[int] = set()
    if consensus is not None:
        forced, votes, disputed = _consensus_states(store, ds.id, consensus)
    for chunk in store.decided_samples(ds.id, suggestions=undecided == "suggested"):
        if forced is not None:
            chunk = [(s, forced.get(stored_id(s)), g) for s, _, g in chunk]
        wanted = {s.candidate_id for _, s, _ in chunk if s and s.status in ("accepted", "edited")}
        wanted |= {g.candidate_id for _, _, g in chunk if g}
        candidates = store.candidates_by_id(c for c in wanted if c) if any(wanted) else {}
        for sample, state, suggestion in chunk:
            chosen = _choose(sample, state, suggestion, candidates, undecided)
            if consensus is not None:
                chosen.consensus = consensus
                chosen.reviews = votes.get(stored_id(sample), [])
                chosen.disputed = stored_id(sample) in disputed
            yield chosen


def _choose(
    sample: Sample,
    state: SampleState | None,
    suggestion: Suggestion | None,
    candidates: dict[int, Candidate],
    undecided: str,
) -> Chosen:
    status = state.status if state else "undecided"
    if status == "rejected":
        return Chosen(sample, None, "rejected")
    if state is not None and status in ("accepted", "edited"):
        candidate = candidates.get(state.candidate_id) if state.candidate_id else None
        return Chosen(sample, candidate, status, state.annotator, state.decided_at)
    if undecided == "skip":
        return Chosen(sample, None, "undecided")
    if undecided == "suggested" and suggestion is not None:
        if suggestion.decision == "reject":
            return Chosen(sample, None, "suggested-reject", rule=suggestion.rule)
        candidate = candidates.get(suggestion.candidate_id) if suggestion.candidate_id else None
        return Chosen(sample, candidate, "suggested", rule=suggestion.rule)
    return Chosen(sample, None, "undecided-original")


LEFT_OUT = ("rejected", "undecided", "suggested-reject")
CHUNK = 2000


@dataclass
class _Policy:
    """What an export chooses: the undecided policy and the consensus, if any."""

    undecided: str = "skip"
    consensus: str | None = None


def _kept_chunks(
    store: Store, dataset: str | int, policy: _Policy, counts: Counter[str]
) -> Iterator[list[Chosen]]:
    """The exported versions in chunks; `counts` tallies every sample by reason."""
    chunk: list[Chosen] = []
    for chosen in chosen_versions(store, dataset, policy.undecided, policy.consensus):
        counts[chosen.reason] += 1
        if policy.consensus is not None:
            counts["disputed"] += chosen.disputed
        if chosen.reason not in LEFT_OUT:
            chunk.append(chosen)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _version_of(chosen: Chosen) -> tuple[int, int | None]:
    return stored_id(chosen.sample), chosen.candidate.id if chosen.candidate else None


def _score_names(
    store: Store, dataset: str | int, policy: _Policy, scorers: Sequence[str]
) -> list[str]:
    """The score fields of every exported record (one pass over the decisions): tables need
    every column before the first row, and a choice that must be made fails before writing."""
    from ..scoring.fields import scores_for_export

    names: set[str] = set()
    for chunk in _kept_chunks(store, dataset, policy, Counter()):
        fields = scores_for_export(store, map(_version_of, chunk), scorers)
        names.update(name for found in fields.values() for name in found)
    return sorted(names)


def curated_records(
    store: Store,
    dataset: str | int,
    fmt: str = "alpaca",
    *,
    undecided: str = "skip",
    provenance: bool = False,
    with_scores: bool = False,
    scores_from: Sequence[str] = (),
    consensus: str | None = None,
    counts: Counter[str] | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The records an export writes, one at a time, in constant memory; `counts` (if given)
    tallies every sample by reason as they go by, and `limit` stops building records (not
    counting) after that many.

    `with_scores` adds each record's scores as fields (reflection.scoring.fields); `scores_from`
    picks the scorer where several scored a metric.
    """
    _check_policies(undecided, consensus)
    policy = _Policy(undecided, consensus)
    counts = Counter() if counts is None else counts
    name = store.dataset(dataset).name
    names = _score_names(store, dataset, policy, scores_from) if with_scores else []
    return _records(store, dataset, fmt, name, policy, provenance, names, scores_from,
                    counts, limit)  # fmt: skip


def _records(
    store: Store,
    dataset: str | int,
    fmt: str,
    name: str,
    policy: _Policy,
    provenance: bool,
    names: list[str],
    scorers: Sequence[str],
    counts: Counter[str],
    limit: int | None,
) -> Iterator[dict[str, Any]]:
    from ..scoring.fields import scores_for_export

    built = 0
    for chunk in _kept_chunks(store, dataset, policy, counts):
        if limit is not None:
            chunk = chunk[: max(0, limit - built)]
        if not chunk:
            continue
        fields = scores_for_export(store, map(_version_of, chunk), scorers) if names else {}
        for chosen in chunk:
            record = to_record(chosen.version(), chosen.sample.meta, fmt)
            if provenance:
                _add_provenance(record, chosen.provenance(name), fmt)
            if names:  # every record gets every column (None where unscored)
                found = fields[_version_of(chosen)]
                record.update({field: found.get(field) for field in names})
            built += 1
            yield record


def _written(counts: Counter[str]) -> dict[str, int]:
    counts["written"] = counts["accepted"] + counts["edited"] + counts["suggested"]
    counts["written"] += counts["undecided-original"]
    return dict(sorted(counts.items()))


def export_records(
    store: Store,
    dataset: str | int,
    fmt: str = "alpaca",
    *,
    undecided: str = "skip",
    provenance: bool = False,
    limit: int | None = None,
    with_scores: bool = False,
    scores_from: Sequence[str] = (),
    consensus: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records an export would write (the first `limit` of them) and counts by reason."""
    counts: Counter[str] = Counter()
    records = list(
        curated_records(store, dataset, fmt, undecided=undecided, provenance=provenance,
                        with_scores=with_scores, scores_from=scores_from, consensus=consensus,
                        counts=counts, limit=limit)
    )  # fmt: skip
    return records, _written(counts)


def _add_provenance(record: dict, provenance: dict, fmt: str) -> None:
    if fmt in ("csv", "parquet"):
        # Tables have no nesting: one column per provenance field.
        record.update({f"provenance_{k}": v for k, v in provenance.items()})
    else:
        record["provenance"] = provenance


def export_dataset(
    store: Store,
    dataset: str | int,
    path: str | Path,
    fmt: str | None = None,
    *,
    undecided: str = "skip",
    provenance: bool = False,
    with_scores: bool = False,
    scores_from: Sequence[str] = (),
    consensus: str | None = None,
    allow_empty: bool = True,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the curated set to `path` atomically, streaming, and record the export as a run.

    With `allow_empty` False, a set left empty only because undecided samples were skipped
    is not written: ExportError says so and names the policies that would keep them.
    `progress` is told the samples gone through, of the dataset's ("write"), and "done".
    """
    path = Path(path)
    fmt = format_for_path(path, fmt)
    ds = store.dataset(dataset)
    settings = {
        "consensus": consensus,
        "path": str(path),
        "format": fmt,
        "undecided": undecided,
        "provenance": provenance,
        "with_scores": with_scores,
        "scores_from": list(scores_from),
    }
    counts: Counter[str] = Counter()
    records = curated_records(
        store, ds.id, fmt, undecided=undecided, provenance=provenance,
        with_scores=with_scores, scores_from=scores_from, consensus=consensus, counts=counts,
    )  # fmt: skip
    # The first record is built before anything is written, so an empty set can say why
    # (reading on to the end finds there is none: `counts` is then complete).
    first = next(records, None)
    if first is None and not allow_empty and counts.get("undecided"):
        raise ExportError(
            f"nothing to write to {path}: {counts['undecided']:,} of {ds.name!r}'s samples are"
            f" undecided and --undecided {undecided} leaves them out; --undecided original keeps"
            " their originals, --undecided suggested follows `reflection suggest`"
        )
    written: Iterator[dict[str, Any]] = itertools.chain(
        [first] if first is not None else [], records
    )
    if progress is not None:
        written = _told(written, counts, ds.sample_count, progress)
    with store.run("export", ds.id, settings) as run:
        write_dataset(path, written, fmt)
        run.counters = _written(counts)
    (progress or quiet)("done", run.counters["written"], None)
    return ExportResult(path, fmt, run.counters["written"], run.counters, run.id)


def _told(
    records: Iterator[dict[str, Any]], counts: Counter[str], total: int, progress: Progress
) -> Iterator[dict[str, Any]]:
    """`records`, telling `progress` every 5,000 how many samples were gone through."""
    for n, record in enumerate(records, 1):
        if n % 5000 == 0:
            progress("write", sum(counts.values()), total)
        yield record
