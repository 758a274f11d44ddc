"""Suggestions in the store: run a selection rule (select.py, pure) over a dataset's scores
and keep one suggestion per sample. Reviews are never touched: export uses suggestions only
for samples nobody decided."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..errors import ConfigError
from ..records import Suggestion, stored_id
from ..scoring.versions import dataset_versions
from ..store import Store
from .rules import (
    ACCEPT,
    DEFAULT_PREFERENCE,
    REJECT,
    RULES,
    Condition,
    Scored,
    apply_rule,
    parse_condition,
)


def _needed(rule: str, conditions: Sequence[Condition], metric: str | None) -> list[str]:
    if rule == "selective":
        return ["ifd_ppl", "rifd_ppl"]
    if rule == "threshold":
        return sorted({c.metric for c in conditions})
    if rule == "topk":
        return [metric or "ifd_ppl"]
    return [metric or "judge"]


def pick_scorers(
    store: Store, dataset_id: int, metrics: Iterable[str], prefer: Sequence[str] = ()
) -> dict[str, str]:
    """Which scorer's values to read for each metric: the first of `prefer` that gave it, else
    the only one that did; ConfigError when several did and none is preferred."""
    chosen = {}
    for metric in metrics:
        found = store.dataset_scorers(dataset_id, metric)
        preferred = [s for s in prefer if s in found]
        if preferred:
            chosen[metric] = preferred[0]
        elif len(found) == 1:
            chosen[metric] = found[0]
        elif found:
            raise ConfigError(
                f"several scorers gave {metric}: {', '.join(found)}; choose one with --scorer"
            )
    return chosen


def scored_versions(
    store: Store, dataset_id: int, scorers: Mapping[str, str], *, limit: int | None = None
) -> dict[int, list[Scored]]:
    """{sample id: [Scored]} for a dataset, reading each metric from its chosen scorer."""

    samples: dict[int, list[Scored]] = {}
    # Per sample, per version (candidate id): the scores its Scored reads.
    tables: dict[int, dict[int | None, dict[str, float | None]]] = {}
    for sample, versions in dataset_versions(store, dataset_id, limit=limit):
        values = tables[stored_id(sample)] = {}
        samples[stored_id(sample)] = [
            Scored(v.candidate_id, v.kind, v.parent_id, values.setdefault(v.candidate_id, {}))
            for v in versions
        ]
    for sample_id, scores in store.scores_for_samples(list(samples)).items():
        by_version = tables[sample_id]
        for score in scores:
            if scorers.get(score.metric) == score.scorer and score.candidate_id in by_version:
                by_version[score.candidate_id][score.metric] = score.value
    return samples


def suggest(
    store: Store,
    dataset: str | int,
    rule: str = "selective",
    *,
    scorers: Sequence[str] = (),
    conditions: Iterable[Condition | str] = (),
    prefer: Sequence[str] = DEFAULT_PREFERENCE,
    otherwise: str = REJECT,
    percent: float = 10.0,
    metric: str | None = None,
    margin: float = 1.0,
    limit: int | None = None,
) -> dict[str, int]:
    """Apply a rule to a dataset and store one suggestion per sample; returns counts.

    A sample the rule has no verdict for loses any older suggestion. Reviews are untouched.
    """
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    ds = store.dataset(dataset)
    parsed = [c if isinstance(c, Condition) else parse_condition(c) for c in conditions]
    needed = _needed(rule, parsed, metric)
    chosen_scorers = pick_scorers(store, ds.id, needed, scorers)
    settings = {"rule": rule, "scorers": chosen_scorers, "conditions": [str(c) for c in parsed],
                "prefer": list(prefer), "otherwise": otherwise, "percent": percent,
                "metric": metric, "margin": margin}  # fmt: skip
    with store.run("suggest", ds.id, settings) as run:
        samples = scored_versions(store, ds.id, chosen_scorers, limit=limit)
        choices = apply_rule(
            rule, samples, conditions=parsed, prefer=prefer, otherwise=otherwise,
            percent=percent, metric=metric, margin=margin,
        )  # fmt: skip
        name = rule if rule != "threshold" else f"threshold:{' and '.join(map(str, parsed))}"
        rows = [
            Suggestion(
                sid, c.candidate_id, name, c.reason, c.confidence, run.id, decision=c.decision
            )
            for sid, c in choices.items()
            if c is not None
        ]
        with store.transaction():
            store.clear_suggestions(choices)
            store.put_suggestions(rows)
        run.counters = {
            "samples": len(choices),
            "suggested": len(rows),
            "no_suggestion": len(choices) - len(rows),
            "accept_original": sum(
                1 for r in rows if r.decision == ACCEPT and r.candidate_id is None
            ),
            "accept_reflected": sum(1 for r in rows if r.decision == ACCEPT and r.candidate_id),
            "reject": sum(1 for r in rows if r.decision == REJECT),
        }
    return run.counters
