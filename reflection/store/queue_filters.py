"""The review queue's filters as SQL: which samples have a status, a flag, a score in range.

Each filter is a set of sample ids (`Member`), written one of two ways:

- `s.id IN (SELECT sample_id FROM t WHERE ...)`: the database builds the whole set once, then
  keeps the queue's samples in it. Right for a small set, and for an order that must read
  every sample anyway (by a score, by confidence).
- `EXISTS (SELECT 1 FROM t WHERE sample_id = s.id AND ...)`: a probe per sample, read in queue
  order, stopping once a window is full. Right for a large set in source order: at 1,000,000
  samples, building the set of 400,000 drifted ones took 0.45 s, and probing the first 1,400
  samples for 500 takes a few milliseconds.

`QueueStore` measures each set (up to DENSE rows, through the index that finds them) and
picks; statuses are measured from the counts the store keeps (m018).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ReflectionError
from ..records import (
    DERIVED_FLAGS,
    DRIFT_METRIC,
    DRIFT_THRESHOLD,
    FLAG_METRICS,
    IFD_METRIC,
    JUDGE_FLOOR,
    JUDGE_LOW_FLAG,
    JUDGE_METRIC,
    MISALIGNED_IFD,
    PARSE_FAILED_STATUSES,
)
from ..records import REVIEW_STATUSES as STATUSES

VERSIONS = ("original", "candidate", "change")
# A set this large or larger is probed sample by sample rather than built: past it, a window
# of 500 is found within a few tens of thousands of probes in source order.
DENSE = 20_000


@dataclass(frozen=True)
class ScoreRange:
    """Keep samples whose `metric` lies in [low, high] on a version.

    version: "original"; "candidate" (any candidate in range); "change" (a candidate's value
    minus the original's, for any candidate).
    """

    metric: str
    low: float | None = None
    high: float | None = None
    version: str = "original"


@dataclass(frozen=True)
class Member:
    """Samples with a row in `table` (keyed by `sample_id`) meeting `where`; with `negate`,
    those without one. `size` is the number of rows meeting `where`, when known up front.

    `{t}` in `where` marks columns that lead some other index (metric, status, dataset_id): a
    probe writes them `+t.column`, which keeps the planner on the sample_id index (at 1,000,000
    samples a probe through the metric index read every drift score per sample: 55 s).
    PostgreSQL's translation drops the `+`.
    """

    table: str
    where: str
    params: tuple[Any, ...] = ()
    negate: bool = False
    size: int | None = None

    def as_set(self) -> tuple[str, list[Any]]:
        op = "NOT IN" if self.negate else "IN"
        where = self.where.format(t="")
        return f"s.id {op} (SELECT sample_id FROM {self.table} WHERE {where})", [*self.params]

    def as_probe(self) -> tuple[str, list[Any]]:
        op = "NOT EXISTS" if self.negate else "EXISTS"
        return (
            f"{op} (SELECT 1 FROM {self.table} t WHERE t.sample_id = s.id"
            f" AND {self.where.format(t='+t.')})",
            [*self.params],
        )

    def count_sql(self) -> tuple[str, list[Any]]:
        """How many rows meet `where`, counting no further than DENSE."""
        return (
            f"SELECT count(*) FROM (SELECT 1 FROM {self.table} WHERE {self.where.format(t='')}"
            f" LIMIT {DENSE}) AS capped",
            [*self.params],
        )


def _in_range(column: str, item: ScoreRange) -> tuple[str, list[Any]]:
    parts, params = [], []
    if item.low is not None:
        parts.append(f"{column} >= ?")
        params.append(item.low)
    if item.high is not None:
        parts.append(f"{column} <= ?")
        params.append(item.high)
    return " AND ".join(parts) or f"{column} IS NOT NULL", params


def status_members(
    statuses: tuple[str, ...],
    dataset_id: int,
    reviewer: str | None,
    counts: dict[str, int] | None,
) -> list[Member]:
    """The samples with any of `statuses` (ORed): from the sample's state, or on an assigned
    queue from the reviewer's own track. `counts` (samples per status, the store's kept
    counts) sizes the shared queue's sets; None leaves them to be counted."""
    unknown = set(statuses) - set(STATUSES)
    if unknown:
        raise ReflectionError(
            f"unknown status {sorted(unknown)[0]!r} (expected one of {', '.join(STATUSES)})"
        )
    if reviewer is None:
        table, where = "sample_state", "{t}dataset_id = ?"
        params: tuple[Any, ...] = (dataset_id,)
    else:
        table = "reviewer_state"
        where = "{t}dataset_id = ? AND {t}kind = '' AND {t}reviewer = ?"
        params = (dataset_id, reviewer)
    decided = [s for s in statuses if s != "undecided"]
    members = []
    if decided:
        members.append(
            Member(
                table,
                f"{where} AND {{t}}status IN ({','.join('?' * len(decided))})",
                (*params, *decided),
                size=None if counts is None else sum(counts.get(s, 0) for s in decided),
            )
        )
    if "undecided" in statuses:
        size = None if counts is None else counts.get("undecided", 0)
        members.append(Member(table, where, params, negate=True, size=size))
    return members


def flag_members(flags: tuple[str, ...]) -> list[Member]:
    """The samples carrying any of the derived flags among `flags` (import flags excepted:
    `imported_flags_sql` finds those)."""
    members = []
    for flag in flags:
        if flag == "misaligned":
            members.append(
                Member("scores", "{t}metric = ? AND value >= ?", (IFD_METRIC, MISALIGNED_IFD))
            )
        elif flag == "drift":
            members.append(
                Member("scores", "{t}metric = ? AND value < ?", (DRIFT_METRIC, DRIFT_THRESHOLD))
            )
        elif flag in ("parse_failed", "truncated"):
            statuses = PARSE_FAILED_STATUSES if flag == "parse_failed" else ("truncated",)
            members.append(
                Member(
                    "candidates",
                    f"{{t}}status IN ({','.join('?' * len(statuses))})",
                    tuple(statuses),
                )
            )
        elif flag == "no_candidate":
            members.append(Member("candidates", "1 = 1", negate=True))
        elif flag in FLAG_METRICS:
            # Content checks and relevance keep their flags, with reasons, in the detail.
            members.append(
                Member(
                    "scores",
                    "{t}metric = ? AND json_extract(detail, ?) IS NOT NULL",
                    (FLAG_METRICS[flag], f"$.flags.{flag}"),
                )
            )
        elif flag == JUDGE_LOW_FLAG:
            members.append(
                Member("scores", "{t}metric = ? AND value <= ?", (JUDGE_METRIC, JUDGE_FLOOR))
            )
    return members


def imported_flags_sql(flags: tuple[str, ...], dataset_id: int) -> tuple[str, list[Any]] | None:
    """The samples carrying any of the import flags among `flags`, through the partial index of
    flagged samples (m007): unflagged rows are never read."""
    imported = [f for f in flags if f not in DERIVED_FLAGS]
    if not imported:
        return None
    return (
        "s.id IN (SELECT f.id FROM samples f WHERE f.dataset_id = ?"
        " AND f.flags != '[]' AND EXISTS (SELECT 1 FROM json_each(f.flags) j"
        f" WHERE j.value IN ({','.join('?' * len(imported))})))",
        [dataset_id, *imported],
    )


def range_member(item: ScoreRange) -> Member:
    """The samples with `item.metric` in range on the version it names."""
    if item.version not in VERSIONS:
        raise ReflectionError(
            f"unknown version {item.version!r} (expected one of {', '.join(VERSIONS)})"
        )
    if item.version == "change":
        cond, params = _in_range("change", item)
        return Member("score_changes", f"{{t}}metric = ? AND {cond}", (item.metric, *params))
    op = "=" if item.version == "original" else "!="
    cond, params = _in_range("value", item)
    return Member(
        "scores", f"{{t}}metric = ? AND candidate_id {op} 0 AND {cond}", (item.metric, *params)
    )
