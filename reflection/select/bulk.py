"""Bulk decisions: one rule applied to every sample it matches, as one undoable run.

A rule names the version to decide on (the suggestion, the original, or the newest usable
candidate of a kind), conditions on that version's scores, and the decision. `preview` shows
what a rule would touch; `apply` re-evaluates it inside one transaction (so decisions made
since the preview are respected), records a `bulk` run, and appends one review per sample
carrying that run's id; `undo` takes back, as one, whichever of them are still in force.

On an assigned dataset (team review) a bulk rule is an admin's final decision, so its reviews
are adjudications: they settle the samples they match without posing as one more reviewer
(no third vote, nothing in the agreement figures). Undo takes a run's review back from the
track it lies on, and only while it is the latest there, so no reviewer's decision and no
later adjudication is ever taken back with it.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import NotFoundError, ReflectionError
from ..records import (
    DRIFT_METRIC,
    DRIFT_THRESHOLD,
    IFD_METRIC,
    Candidate,
    Condition,
    Review,
    Run,
    Sample,
)
from ..records import REVIEW_STATUSES as STATUSES
from ..store import Store
from ..store.tracks import ADJUDICATION

ACTIONS = ("accept", "reject")
TARGETS = ("suggested", "original", "kind")


@dataclass(frozen=True)
class BulkRule:
    """Which samples a bulk action touches and what it decides for them."""

    action: str = "accept"
    target: str = "suggested"
    kind: str | None = None
    conditions: tuple[Condition, ...] = ()
    reflection_failed: bool = False
    statuses: tuple[str, ...] = ("undecided",)
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ReflectionError(f"unknown bulk action {self.action!r} (expected {ACTIONS})")
        if self.target not in TARGETS:
            raise ReflectionError(f"unknown bulk target {self.target!r} (expected {TARGETS})")
        if self.target == "kind" and not self.kind:
            raise ReflectionError("a bulk rule on a candidate kind needs the kind")
        unknown = set(self.statuses) - set(STATUSES)
        if unknown or not self.statuses:
            raise ReflectionError(f"a bulk rule needs known statuses, not {sorted(unknown)}")

    def describe(self) -> str:
        """The rule in one line, for previews and the run list."""
        version = {
            "suggested": "the suggested version",
            "original": "the original",
            "kind": f"the {self.kind}-reflected candidate",
        }[self.target]
        if self.action == "accept":
            what = f"accept {version}"
        elif self.target == "suggested":
            what = "reject the sample as suggested"
        else:
            what = "reject the sample"
        where = [c.describe() for c in self.conditions]
        if self.reflection_failed:
            where.append("every reflection failed to parse")
        where.append("status " + " or ".join(self.statuses))
        return f"{what} where {' and '.join(where)}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BulkRule:
        data = dict(data)
        data["conditions"] = tuple(Condition(**c) for c in data.get("conditions", ()))
        data["statuses"] = tuple(data.get("statuses", ("undecided",)))
        return cls(**data)


PRESETS: dict[str, BulkRule] = {
    "Accept the suggestion where IFD < 1 and drift is low": BulkRule(
        action="accept",
        target="suggested",
        conditions=(
            Condition(IFD_METRIC, "<", 1.0),
            Condition(DRIFT_METRIC, ">=", DRIFT_THRESHOLD, original_value=1.0),
        ),
    ),
    "Reject samples whose reflections all failed to parse": BulkRule(
        action="reject", target="original", reflection_failed=True
    ),
    "Keep the original where every reflection failed to parse": BulkRule(
        action="accept", target="original", reflection_failed=True
    ),
    "Accept the response reflection where its IFD < 1": BulkRule(
        action="accept",
        target="kind",
        kind="response",
        conditions=(Condition(IFD_METRIC, "<", 1.0),),
    ),
}


# Short names for the command line.
PRESET_NAMES: dict[str, str] = dict(
    zip(
        ("accept-suggested", "reject-failed", "keep-original-failed", "accept-response"),
        PRESETS,
        strict=True,
    )
)


@dataclass
class Example:
    """One sample a rule would decide, with the version it would take and that version's scores."""

    sample_id: int
    candidate_id: int | None
    instruction: str
    output: str
    kind: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Preview:
    rule: BulkRule
    count: int
    examples: list[Example]


def _terms(rule: BulkRule) -> dict[str, Any]:
    """The rule in the store's terms (`Store.rule_matches`)."""
    return {
        "target": rule.target,
        "kind": rule.kind,
        "statuses": rule.statuses,
        "conditions": [
            (c.metric, c.scorer, c.op, c.value, c.original_value) for c in rule.conditions
        ],
        "reflection_failed": rule.reflection_failed,
        "suggested_decision": rule.action,
    }


def preview(store: Store, dataset_id: int, rule: BulkRule, examples: int = 5) -> Preview:
    """How many samples `rule` would decide now, and the first few of them."""
    # Counted in the database, and only the examples read: a rule at 1M samples matches
    # hundreds of thousands, which would otherwise all pass through Python.
    terms = _terms(rule)
    shown = list(store.rule_matches(dataset_id, limit=examples, **terms))
    count = store.rule_match_count(dataset_id, **terms) if len(shown) == examples else len(shown)
    metrics = sorted({c.metric for c in rule.conditions} | {IFD_METRIC, DRIFT_METRIC})
    scores = store.scores_of_versions(shown, metrics)
    found = []
    for sample_id, cid in shown:
        version: Candidate | Sample
        if cid:
            version = store.candidate(cid)
            kind = version.kind
        else:
            version = store.sample(sample_id)
            kind = "original"
        found.append(
            Example(
                sample_id=sample_id,
                candidate_id=cid or None,
                instruction=version.instruction,
                output=version.output,
                kind=kind,
                scores=scores.get((sample_id, cid), {}),
            )
        )
    return Preview(rule=rule, count=count, examples=found)


def apply(store: Store, dataset_id: int, rule: BulkRule, annotator: str = "") -> Run:
    """Decide every sample `rule` matches, as one `bulk` run (all or nothing)."""
    with (
        store.transaction(),
        store.run("bulk", dataset_id, {"rule": rule.to_dict(), "annotator": annotator}) as run,
    ):
        # The matches first, as two compact columns (16 bytes a match): deciding changes
        # what the rule's query reads, so it must not be read while the decisions are written.
        samples, versions = array("q"), array("q")
        for sample_id, cid in store.rule_matches(dataset_id, **_terms(rule)):
            samples.append(sample_id)
            versions.append(cid)
        note = rule.note or f"bulk: {rule.describe()}"
        kind = ADJUDICATION if store.dataset_assigned(dataset_id) else ""
        count = store.append_reviews(
            Review(
                sample_id=sample_id,
                decision=rule.action,
                candidate_id=(cid or None) if rule.action == "accept" else None,
                annotator=annotator,
                note=note,
                tags=["bulk"],
                run_id=run.id,
                kind=kind,
            )
            for sample_id, cid in zip(samples, versions, strict=True)
        )
        run.counters = {"matched": count, "reviews": count, rule.action: count}
    assert run.id is not None
    return store.get_run(run.id)


def undo(store: Store, run_id: int, annotator: str = "") -> int:
    """Take back every decision of bulk run `run_id` still in force; returns how many."""
    run = store.get_run(run_id)
    if run.kind != "bulk":
        raise NotFoundError(f"run {run_id} is a {run.kind} run, not a bulk run")
    with store.transaction():
        undone = store.undo_run(run_id, annotator)
        store.update_run(run_id, counters={**run.counters, "undone": undone}, status="undone")
    return undone


@dataclass
class BulkRunInfo:
    id: int
    status: str
    started_at: str
    description: str
    reviews: int
    in_force: int


def bulk_runs(store: Store, dataset_id: int, limit: int = 20) -> list[BulkRunInfo]:
    """The newest bulk runs of a dataset, with how many of their decisions still stand."""
    found = []
    for row in store.runs_touching("bulk", dataset_id, limit):
        settings = json.loads(row["settings"] or "{}")
        counters = json.loads(row["counters"] or "{}")
        try:
            description = BulkRule.from_dict(settings.get("rule", {})).describe()
        except (ReflectionError, TypeError):
            description = "(rule not readable)"
        found.append(
            BulkRunInfo(
                id=row["id"],
                status=row["status"],
                started_at=row["started_at"],
                description=description,
                reviews=counters.get("reviews", 0),
                in_force=row["in_force"],
            )
        )
    return found
