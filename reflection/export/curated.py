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

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExportError, ReflectionError
from ..formats import format_for_path, to_record, write_dataset
from ..records import Candidate, Sample, SampleState, stored_id
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


def chosen_versions(
    store: Store, dataset: str | int, undecided: str = "skip", consensus: str | None = None
) -> Iterator[Chosen]:
    """Each sample's exported version in source order; `counts` in export_records tallies them."""
    if undecided not in UNDECIDED_POLICIES:
        raise ReflectionError(
            f"unknown undecided policy {undecided!r}; expected {', '.join(UNDECIDED_POLICIES)}"
        )
    if consensus is not None and consensus not in CONSENSUS_MODES:
        raise ReflectionError(
            f"unknown consensus {consensus!r}; expected {', '.join(CONSENSUS_MODES)}"
        )
    ds = store.dataset(dataset)
    votes: dict[int, list[dict[str, Any]]]
    disputed: set[int]
    if consensus is None:
        states, votes, disputed = store.states(ds.id), {}, set()
    else:
        states, votes, disputed = _consensus_states(store, ds.id, consensus)
    for chosen in _chosen(store, ds.id, states, undecided):
        if consensus is not None:
            chosen.consensus = consensus
            chosen.reviews = votes.get(stored_id(chosen.sample), [])
            chosen.disputed = stored_id(chosen.sample) in disputed
        yield chosen


def _chosen(
    store: Store, dataset_id: int, states: dict[int, SampleState], undecided: str
) -> Iterator[Chosen]:
    suggestions = store.suggestions(dataset_id) if undecided == "suggested" else {}
    wanted = {s.candidate_id for s in states.values() if s.status in ("accepted", "edited")}
    wanted |= {s.candidate_id for s in suggestions.values()}
    candidates = store.candidates_by_id(c for c in wanted if c)
    for sample in store.samples(dataset_id):
        sample_id = stored_id(sample)
        state = states.get(sample_id)
        status = state.status if state else "undecided"
        if status == "rejected":
            yield Chosen(sample, None, "rejected")
        elif state is not None and status in ("accepted", "edited"):
            candidate = candidates.get(state.candidate_id) if state.candidate_id else None
            yield Chosen(sample, candidate, status, state.annotator, state.decided_at)
        elif undecided == "skip":
            yield Chosen(sample, None, "undecided")
        elif undecided == "suggested" and sample_id in suggestions:
            suggestion = suggestions[sample_id]
            if suggestion.decision == "reject":
                yield Chosen(sample, None, "suggested-reject", rule=suggestion.rule)
                continue
            candidate = candidates.get(suggestion.candidate_id) if suggestion.candidate_id else None
            yield Chosen(sample, candidate, "suggested", rule=suggestion.rule)
        else:
            yield Chosen(sample, None, "undecided-original")


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
) -> tuple[list[dict], dict[str, int]]:
    """The records an export would write (the first `limit` of them) and counts by reason.

    `with_scores` adds each record's scores as fields (reflection.scoring.fields); `scores_from`
    picks the scorer where several scored a metric.
    """
    name = store.dataset(dataset).name
    records: list[dict] = []
    versions: list[tuple[int, int | None]] = []
    counts: Counter[str] = Counter()
    for chosen in chosen_versions(store, dataset, undecided, consensus):
        counts[chosen.reason] += 1
        counts["disputed"] += chosen.disputed
        if chosen.reason in ("rejected", "undecided", "suggested-reject"):
            continue
        if limit is not None and len(records) >= limit:
            continue
        record = to_record(chosen.version(), chosen.sample.meta, fmt)
        if provenance:
            _add_provenance(record, chosen.provenance(name), fmt)
        records.append(record)
        versions.append(
            (stored_id(chosen.sample), chosen.candidate.id if chosen.candidate else None)
        )
    if with_scores:
        from ..scoring.fields import scores_for_export

        fields = scores_for_export(store, versions, scores_from)
        # Every record gets every column (None where unscored): tables need one header.
        names = sorted({name for found in fields.values() for name in found})
        for record, version in zip(records, versions, strict=True):
            record.update({name: fields[version].get(name) for name in names})
    counts["written"] = counts["accepted"] + counts["edited"] + counts["suggested"]
    counts["written"] += counts["undecided-original"]
    if consensus is None:
        counts.pop("disputed", None)
    return records, dict(sorted(counts.items()))


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
) -> ExportResult:
    """Write the curated set to `path` atomically and record the export as a run.

    With `allow_empty` False, a set left empty only because undecided samples were skipped
    is not written: ExportError says so and names the policies that would keep them.
    """
    path = Path(path)
    fmt = format_for_path(path, fmt)
    ds = store.dataset(dataset)
    records, counts = export_records(
        store, ds.id, fmt, undecided=undecided, provenance=provenance,
        with_scores=with_scores, scores_from=scores_from, consensus=consensus,
    )  # fmt: skip
    if not records and not allow_empty and counts.get("undecided"):
        raise ExportError(
            f"nothing to write to {path}: {counts['undecided']:,} of {ds.name!r}'s samples are"
            f" undecided and --undecided {undecided} leaves them out; --undecided original keeps"
            " their originals, --undecided suggested follows `reflection suggest`"
        )
    settings = {
        "consensus": consensus,
        "path": str(path),
        "format": fmt,
        "undecided": undecided,
        "provenance": provenance,
        "with_scores": with_scores,
        "scores_from": list(scores_from),
    }
    with store.run("export", ds.id, settings) as run:
        write_dataset(path, records, fmt)
        run.counters = counts
    return ExportResult(path, fmt, len(records), counts, run.id)
