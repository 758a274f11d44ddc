"""The records the store holds, as plain dataclasses.

A *version* of a sample is either its original pair (``candidate_id`` None) or one of its
candidates. Reviews and scores point at a version by ``(sample_id, candidate_id)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Candidate kinds: how an alternative version came about.
CANDIDATE_KINDS = ("instruction", "response", "both", "compress", "reroll", "edit", "other")
# Parse or request status of a candidate.
CANDIDATE_STATUSES = ("ok", "partial", "failed", "truncated", "error")
# Review decisions. "accept" chooses a version; "edit" accepts a human edit (a candidate of
# kind "edit"); "reject" leaves the sample out; "skip" records that it was seen but left
# undecided; "undo" takes back the latest decision still in force.
DECISIONS = ("accept", "edit", "reject", "skip", "undo")
UNDECIDED = "undecided"


@dataclass
class Dataset:
    id: int
    name: str
    created_at: str = ""
    sample_count: int = 0


@dataclass
class Sample:
    """An original pair, as imported. Never changed after import."""

    instruction: str
    input: str = ""
    output: str = ""
    system: str = ""
    history: list[list[str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    dataset_id: int | None = None
    position: int | None = None
    source: str = ""
    content_hash: str = ""
    flags: list[str] = field(default_factory=list)
    created_at: str = ""


@dataclass
class Candidate:
    """An alternative version of a sample: reflected by an oracle, imported, or a human edit."""

    sample_id: int
    kind: str
    instruction: str = ""
    input: str = ""
    output: str = ""
    critique: str = ""
    raw: str = ""
    status: str = "ok"
    error: str = ""
    model: str = ""
    prompt_hash: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    parent_id: int | None = None
    run_id: int | None = None
    annotator: str = ""
    origin: dict[str, Any] = field(default_factory=dict)
    job_key: str | None = None
    id: int | None = None
    created_at: str = ""


@dataclass
class Score:
    """One value of one metric for one version of a sample, by one scorer."""

    sample_id: int
    metric: str
    value: float | None
    scorer: str = ""
    candidate_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    id: int | None = None
    created_at: str = ""


@dataclass
class Review:
    """One decision about a sample. Reviews are only ever appended."""

    sample_id: int
    decision: str
    candidate_id: int | None = None
    annotator: str = ""
    note: str = ""
    tags: list[str] = field(default_factory=list)
    run_id: int | None = None
    id: int | None = None
    created_at: str = ""


@dataclass
class SampleState:
    """Where a sample stands: its latest review still in force, if any."""

    sample_id: int
    status: str = UNDECIDED  # undecided, accepted, edited, rejected, skipped
    review_id: int | None = None
    candidate_id: int | None = None
    annotator: str = ""
    decided_at: str = ""


@dataclass
class Suggestion:
    """Which version a selection rule proposes for a sample, and why in one line."""

    sample_id: int
    candidate_id: int | None
    rule: str
    reason: str
    confidence: float | None = None
    run_id: int | None = None
    created_at: str = ""
    # "accept": keep the version `candidate_id` points at; "reject": leave the sample out
    # (e.g. every version misaligned, or below a top-k cut).
    decision: str = "accept"


@dataclass
class Run:
    """What one import, reflection, scoring, bulk or export run did."""

    kind: str
    dataset_id: int | None = None
    status: str = "running"
    settings: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    id: int | None = None
    started_at: str = ""
    finished_at: str = ""


def content_hash(sample: Sample) -> str:
    """Hash of what a sample says (not where it came from): re-imports add nothing."""
    import hashlib
    import json

    payload = json.dumps(
        [sample.instruction, sample.input, sample.output, sample.system, sample.history],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def sample_flags(sample: Sample) -> list[str]:
    """Flags set at import: problems worth a reviewer's eye, never reasons to drop a record."""
    flags = []
    if not sample.output.strip():
        flags.append("empty_output")
    if not sample.instruction.strip():
        flags.append("empty_instruction")
    return flags
