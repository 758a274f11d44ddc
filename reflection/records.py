"""The records the store holds, as plain dataclasses.

A *version* of a sample is either its original pair (``candidate_id`` None) or one of its
candidates. Reviews and scores point at a version by ``(sample_id, candidate_id)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .errors import ConfigError

# Candidate kinds: how an alternative version came about.
CANDIDATE_KINDS = ("instruction", "response", "both", "compress", "reroll", "edit", "other")
# The kinds an oracle writes (a rule may pick "the newest candidate of kind K" among these).
REFLECTED_KINDS = ("instruction", "response", "both", "compress", "reroll")
# Parse or request status of a candidate.
CANDIDATE_STATUSES = ("ok", "partial", "failed", "truncated", "error")
# Review decisions. "accept" chooses a version; "edit" accepts a human edit (a candidate of
# kind "edit"); "reject" leaves the sample out; "skip" records that it was seen but left
# undecided; "undo" takes back the latest decision still in force.
DECISIONS = ("accept", "edit", "reject", "skip", "undo")
UNDECIDED = "undecided"
# Where a sample stands: its latest review in force, or undecided.
REVIEW_STATUSES = (UNDECIDED, "accepted", "edited", "rejected", "skipped")
# Candidate statuses that mean the oracle's reply did not give a usable version.
PARSE_FAILED_STATUSES = ("failed", "partial", "error")
# A candidate whose reflection failed outright (bulk "reflection failed" rules).
FAILED_STATUSES = ("failed", "error")

# Metrics with a meaning of their own, and the thresholds the method gives them.
IFD_METRIC = "ifd_ppl"
RIFD_METRIC = "rifd_ppl"
# `drift` is the similarity of a reflected instruction to its original (scoring/drift.py):
# low drift is a high value, and the original is fully similar to itself.
DRIFT_METRIC = "drift"
# IFD or r-IFD at or above this: the answer does not follow from the instruction (misaligned).
MISALIGNED_IFD = 1.0
# Instruction similarity below this: the reflection has wandered off-topic (flag `drift`).
DRIFT_THRESHOLD = 0.5
# Content checks (scoring/checks.py): what a version's output is, read from its text alone.
# Each check stores a number; a version that fails one carries the check's flag and a reason
# (in the detail of its CHECKS_METRIC score), and no selection rule ever suggests it.
CHECKS_METRIC = "content_flags"  # the number of flags raised; detail {"flags": {flag: reason}}
EMPTY_FLAG = "empty"  # no output at all
TRUNCATED_FLAG = "truncated"  # the oracle's reply was cut off at the token limit
META_TALK_FLAG = (
    "meta_talk"  # talks about the answer (critique, plans, edits) instead of giving one
)
REPETITIVE_FLAG = "repetitive"  # loops: the same word sequences again and again
LENGTH_FLAG = "length"  # far shorter (or far longer) than the original's output
OFF_TOPIC_FLAG = "off_topic"  # the answer's embedding is far from the instruction's (relevance)
JUDGE_LOW_FLAG = "judge_low"  # a configured judge rated it at or below JUDGE_FLOOR
CONTENT_FLAGS = (EMPTY_FLAG, TRUNCATED_FLAG, META_TALK_FLAG, REPETITIVE_FLAG, LENGTH_FLAG)
# A sentence share at or above this, of sentences that talk about the answer: flag meta_talk.
META_TALK_SHARE = 0.3
# Share of repeated word 4-grams at or above this: flag repetitive (songs with a chorus reach
# 0.3-0.39 among the Alpaca answers; loops 0.5 and more) ...
REPEATED_NGRAM_SHARE = 0.4
# ... or zlib-compressed size over raw size at or below this, for outputs of 400+ characters.
COMPRESSION_FLOOR = 0.25
COMPRESSION_MIN_CHARS = 400
# Output words over the original's: below LENGTH_RATIO_MIN (when the original has at least
# LENGTH_MIN_WORDS words) or above LENGTH_RATIO_MAX (when the original has at least
# LENGTH_MAX_BASE words; a reflection of a one-line answer may well be ten times longer).
LENGTH_RATIO_MIN = 0.2
LENGTH_MIN_WORDS = 10
LENGTH_RATIO_MAX = 8.0
LENGTH_MAX_BASE = 40
# `relevance`: cosine similarity of a version's output to its instruction and input (MiniLM).
# Among the 3,111 Alpaca answers the median is 0.64 and 10 fall below 0.05: "<nooutput>",
# "No output possible...", "Correct.", and a few short stories (fiction shares few words with
# "write a story"), so the flag is kept for answers that are nearly unrelated.
RELEVANCE_METRIC = "relevance"
RELEVANCE_THRESHOLD = 0.05
# A judge rating (1-10) at or below this flags judge_low; only where a judge has rated.
JUDGE_METRIC = "judge"
JUDGE_FLOOR = 3.0
# Where the queue finds a content flag: the metric whose score detail carries it.
FLAG_METRICS = {
    EMPTY_FLAG: CHECKS_METRIC,
    META_TALK_FLAG: CHECKS_METRIC,
    REPETITIVE_FLAG: CHECKS_METRIC,
    LENGTH_FLAG: CHECKS_METRIC,
    OFF_TOPIC_FLAG: RELEVANCE_METRIC,
}
# Flags the review queue derives from scores and statuses.
DERIVED_FLAGS = (
    "misaligned",
    "drift",
    "parse_failed",
    "truncated",
    "no_candidate",
    EMPTY_FLAG,
    META_TALK_FLAG,
    REPETITIVE_FLAG,
    LENGTH_FLAG,
    OFF_TOPIC_FLAG,
    JUDGE_LOW_FLAG,
)


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
    # "" for a reviewer's own decision; "adjudication" for an admin's final decision on a
    # sample its reviewers disagree on (reflection.team.adjudicate).
    kind: str = ""


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


class _Storable(Protocol):
    @property
    def id(self) -> int | None: ...


def stored_id(record: _Storable) -> int:
    """The id of a record the store has written or read; ValueError for one it never held."""
    if record.id is None:
        raise ValueError(f"this {type(record).__name__} has not been stored")
    return record.id


def content_hash(sample: Sample) -> str:
    """Hash of what a sample says (not where it came from): re-imports add nothing.

    The bytes hashed are `json.dumps([instruction, input, output, system, history],
    ensure_ascii=False, separators=(",", ":"))`; orjson writes the same bytes for texts (a
    test holds the two equal on every code point) at twice the speed, on import's hot path.
    A text orjson refuses (a lone surrogate) takes the stdlib."""
    parts = [sample.instruction, sample.input, sample.output, sample.system, sample.history]
    try:
        payload = orjson.dumps(parts)
    except TypeError:
        payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(payload).hexdigest()


def sample_flags(sample: Sample) -> list[str]:
    """Flags set at import: problems worth a reviewer's eye, never reasons to drop a record."""
    flags = []
    if not sample.output.strip():
        flags.append("empty_output")
    if not sample.instruction.strip():
        flags.append("empty_instruction")
    return flags


# --- conditions on scores ---------------------------------------------------------------------

# Comparisons a condition may use. A whitelist: the store turns a condition into SQL text.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}
# The comparisons offered to people, in order ("=" is read as "==").
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>|=)\s*(-?[\d.]+(?:e-?\d+)?)\s*$")


# How reasons print two comparisons.
_PRINTED = {"≤": "<=", "≥": ">="}


def compared(
    a: float, op: str, b: float, *, digits: int = 3, exact_b: bool = False
) -> tuple[str, str]:
    """`a` and `b` as text, each with the fewest decimals (at least `digits`) at which the
    printed numbers compare by `op` as the numbers themselves do, so a reason never reads
    "0.443 < 0.443" or "1.000 < 1". `exact_b` prints `b` (a threshold) as it is, e.g. "1"."""
    test = OPERATORS[_PRINTED.get(op, op)]
    if not test(a, b):
        raise ValueError(f"{a!r} {op} {b!r} does not hold: a reason must not say it")
    threshold = f"{b:g}" if float(f"{b:g}") == b else repr(b)
    for places in range(digits, 18):
        left = f"{a:.{places}f}"
        right = threshold if exact_b else f"{b:.{places}f}"
        if test(float(left), float(right)):
            return left, right
    # Tinier than 17 decimals show apart (0 < 2e-101): significant digits instead.
    for significant in range(1, 18):
        left = f"{a:.{significant}g}"
        right = threshold if exact_b else f"{b:.{significant}g}"
        if test(float(left), float(right)):
            return left, right
    return repr(a), threshold if exact_b else repr(b)


@dataclass(frozen=True)
class Condition:
    """`metric op value` on a version's score, as selection rules and bulk rules use it.

    `scorer` picks one scorer's values (default: the newest); `original_value` is what the
    original counts as when it has no score of this metric (its drift from itself: 1.0).
    """

    metric: str
    op: str
    value: float
    scorer: str | None = None
    original_value: float | None = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ConfigError(
                f"unknown comparison {self.op!r} in a condition (use one of {' '.join(OPERATORS)})"
            )

    @classmethod
    def parse(cls, text: str) -> Condition:
        """`ifd_ppl<1`, `judge>=7`, `drift >= 0.6` → Condition; ConfigError otherwise."""
        match = _CONDITION.match(text)
        if not match:
            raise ConfigError(
                f"cannot read condition {text!r}: expected METRIC OP NUMBER, e.g. ifd_ppl<1"
            )
        metric, op, value = match.groups()
        return cls(metric, op, float(value))

    def holds(self, value: float | None) -> bool:
        """Whether a score meets the condition; a missing or NaN score never does."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return OPERATORS[self.op](value, self.value)

    def describe(self) -> str:
        """For people: `ifd_ppl (student@alpaca) < 1`."""
        by = f" ({self.scorer})" if self.scorer else ""
        return f"{self.metric}{by} {self.op} {self.value:g}"

    def __str__(self) -> str:
        by = f"[{self.scorer}]" if self.scorer else ""
        return f"{self.metric}{by}{self.op}{self.value:g}"
