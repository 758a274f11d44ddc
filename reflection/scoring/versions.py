"""The versions of a sample that scoring and selection look at: the original and its candidates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from ..records import Candidate, Sample, stored_id
from ..store import Store

T = TypeVar("T")
ORIGINAL = "original"
# Candidates whose request or parse failed carry no usable pair.
UNUSABLE_STATUSES = ("failed", "error")


@dataclass(frozen=True)
class Version:
    """One version's text and where it came from; `candidate_id` None is the original."""

    sample_id: int
    candidate_id: int | None
    kind: str
    instruction: str
    input: str
    output: str
    parent_id: int | None = None
    status: str = "ok"  # the candidate's parse or request status; "ok" for the original
    raw: str = ""  # the oracle's whole reply, for the checks of a truncated one

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.sample_id, self.candidate_id)


def original_version(sample: Sample) -> Version:
    return Version(
        stored_id(sample), None, ORIGINAL, sample.instruction, sample.input, sample.output
    )


def candidate_version(sample: Sample, candidate: Candidate) -> Version | None:
    """The full pair a candidate stands for, or None when it has no text at all.

    A candidate that leaves its instruction empty keeps the original's instruction and input
    (a response-only reflection made elsewhere may carry only its answer). Its output is
    always its own: an empty output is scored, flagged and shown as the empty text it is,
    never as the original's (which it would be exported as if accepted: nothing).
    """
    if candidate.status in UNUSABLE_STATUSES:
        return None
    if not candidate.instruction and not candidate.output:
        return None
    instruction, input = (
        (candidate.instruction, candidate.input)
        if candidate.instruction
        else (sample.instruction, sample.input)
    )
    return Version(
        stored_id(sample),
        candidate.id,
        candidate.kind,
        instruction,
        input,
        candidate.output,
        candidate.parent_id,
        candidate.status,
        candidate.raw,
    )


def dataset_versions(
    store: Store,
    dataset_id: int,
    *,
    kinds: Iterable[str] | None = None,
    include_original: bool = True,
    limit: int | None = None,
    chunk: int = 500,
    done: ScoredVersions | None = None,
) -> Iterator[tuple[Sample, list[Version]]]:
    """Each sample of a dataset (in import order) with the versions to score. `done` is
    loaded with each chunk's scored versions before that chunk's samples are yielded."""
    wanted = set(kinds) if kinds else None
    ids = store.sample_id_array(dataset_id, limit)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk].tolist()
        if done is not None:
            done.load(part)
        candidates = store.candidates_for_samples(part)
        for sample in store.samples(dataset_id, part):
            found = [original_version(sample)] if include_original else []
            for candidate in candidates.get(stored_id(sample), []):
                if wanted is not None and candidate.kind not in wanted:
                    continue
                version = candidate_version(sample, candidate)
                if version is not None:
                    found.append(version)
            yield sample, found


class ScoredVersions:
    """Which versions already have `metric` (every one of them, when several) from `scorer`,
    one chunk of samples at a time.

    Pass it to `dataset_versions` as `done`, and ask `version.key in done` of the versions
    it yields: it holds the scored keys of the chunk being yielded only. Scoring used to load
    a set of every scored version of the dataset first: 3,000,000 pairs at 1,000,000
    samples, gigabytes at 10,000,000."""

    def __init__(self, store: Store, metric: str | tuple[str, ...], scorer: str) -> None:
        self.store, self.scorer = store, scorer
        self.metrics = (metric,) if isinstance(metric, str) else metric
        self._keys: set[tuple[int, int | None]] = set()

    def load(self, sample_ids: list[int]) -> None:
        first, *rest = self.metrics
        self._keys = self.store.scored_versions(sample_ids, first, self.scorer)
        for metric in rest:
            if self._keys:
                self._keys &= self.store.scored_versions(sample_ids, metric, self.scorer)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last may be shorter), read lazily."""
    iterator = iter(items)
    while part := list(islice(iterator, size)):
        yield part
