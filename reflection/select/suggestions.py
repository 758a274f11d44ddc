"""Suggestions in the store: run a selection rule (rules.py, pure) over a dataset's scores
and keep one suggestion per sample. Reviews are never touched: export uses suggestions only
for samples nobody decided.

Before a rule judges a chunk, each of its versions without content checks gets them
(scoring/checks.py: pure, no model; one row a version, `scoring/missing_checks.py`), so no
rule ever sees a version whose flags are unknown. A rule's missing scores are named with the
command that computes them: a rule with none of a metric it needs stops, one with gaps says
how many versions it could not judge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..records import CHECKS_METRIC, JUDGE_METRIC, RELEVANCE_METRIC
from ..scoring.check_pool import CheckPool
from ..scoring.checks import version_flags
from ..scoring.missing_checks import Batch, Key, MissingChecks
from ..scoring.text import SCORER as TEXT_SCORER
from ..scoring.versions import ORIGINAL, UNUSABLE_STATUSES
from .rules import (
    DEFAULT_PREFERENCE,
    REJECT,
    RULES,
    Condition,
    Scored,
    apply_rule,
    parse_condition,
)
from .streamed import Counts, Ranking

CHUNK = 500  # samples read, judged and staged at a time

# What computes a metric a rule may need, for the message that says it is missing.
_HOW = {
    "ifd_ppl": ("IFD", "reflection score --metric ifd"),
    "rifd_ppl": ("r-IFD", "reflection score --metric rifd"),
    "judge": ("judge ratings", "reflection score --metric judge"),
    "drift": ("drift", "reflection score --metric drift"),
    RELEVANCE_METRIC: ("relevance", "reflection score --metric relevance"),
}


def _how(metric: str) -> tuple[str, str]:
    return _HOW.get(metric, (metric, "reflection score"))


def describe_missing(missing: Mapping[str, int]) -> list[str]:
    """One line per metric some versions lack: how many, what it costs, what to run."""
    lines = []
    for metric, n in missing.items():
        name, command = _how(metric)
        effect = (
            "off-topic answers among them go unflagged"
            if metric == RELEVANCE_METRIC
            else "a rule cannot choose them"
        )
        lines.append(f"{n} versions have no {name} ({metric}): {effect}; run `{command}`")
    return lines


def _needed(rule: str, conditions: Sequence[Condition], metric: str | None) -> list[str]:
    if rule == "selective":
        return ["ifd_ppl", "rifd_ppl"]
    if rule == "threshold":
        return sorted({c.metric for c in conditions})
    if rule == "topk":
        return [metric or "ifd_ppl"]
    return [metric or "judge"]


def pick_scorers(
    store, dataset_id: int, metrics: Iterable[str], prefer: Sequence[str] = ()
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


def iter_scored_versions(
    store,
    dataset_id: int,
    scorers: Mapping[str, str],
    *,
    limit=None,
    chunk: int | None = None,
    checks: MissingChecks | None = None,
) -> Iterator[dict[int, list[Scored]]]:
    """`scored_versions` a chunk of samples at a time, in import order. Only the versions'
    ids and kinds are read: a rule needs no text (reading every sample's and candidate's
    texts took most of `suggest`'s 536 s at 1,000,000 samples). With `checks`, versions
    without content checks get them first (their texts are read then): a chunk's checks are
    started, on the pool's processes, before the chunk read before it is handed on."""
    size = chunk or CHUNK
    ids = store.sample_id_array(dataset_id, limit)
    ahead: tuple[dict[int, list[Scored]], Batch] | None = None  # read, its checks on the way
    for start in range(0, len(ids), size):
        part_ids = ids[start : start + size].tolist()
        usable = store.usable_versions(part_ids, UNUSABLE_STATUSES)
        part = {
            sample_id: [
                Scored(None, ORIGINAL, None, {}, {}),
                *(
                    Scored(cid, kind, parent, {}, {})
                    for cid, kind, parent in usable.get(sample_id, ())
                ),
            ]
            for sample_id in part_ids
        }
        unchecked = _read_scores(store, part, scorers)
        if checks is None:
            yield part
            continue
        # This chunk's checks start before the one read before it is handed on, so that
        # worker processes check while the caller judges and writes.
        batch = checks.start(part, unchecked)
        if ahead is not None:
            checks.finish(ahead[1])
            yield ahead[0]
        ahead = part, batch
    if checks is not None and ahead is not None:
        checks.finish(ahead[1])
        yield ahead[0]


def _read_scores(store, part: dict[int, list[Scored]], scorers: Mapping[str, str]) -> set[Key]:
    """Put the scores and flags on `part`'s versions; returns the keys of those without
    content checks."""
    # The rule's metrics, the judge's (a low rating flags), and any score carrying flags.
    wanted = [*scorers, JUDGE_METRIC, CHECKS_METRIC]
    unchecked = {(sample_id, v.candidate_id) for sample_id, vs in part.items() for v in vs}
    for sample_id, scores in store.scores_for_samples(list(part), wanted).items():
        by_version = {v.candidate_id: v for v in part[sample_id]}
        for score in scores:
            version = by_version.get(score.candidate_id)
            if version is None:
                continue
            if score.metric == CHECKS_METRIC and score.scorer == TEXT_SCORER:
                unchecked.discard((sample_id, score.candidate_id))
            if scorers.get(score.metric) == score.scorer:
                version.scores[score.metric] = score.value  # type: ignore[index]
            # Flags count from every scorer: a check failed by any is failed.
            version.flags.update(version_flags([score]))  # type: ignore[attr-defined]
    return unchecked


def scored_versions(store, dataset_id: int, scorers: Mapping[str, str], *, limit=None):
    """{sample id: [Scored]} for a dataset, reading each metric from its chosen scorer."""
    samples: dict[int, list[Scored]] = {}
    for part in iter_scored_versions(store, dataset_id, scorers, limit=limit):
        samples.update(part)
    return samples


def suggest(
    store,
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
    workers: int = 1,
) -> dict[str, Any]:
    """Apply a rule to a dataset and store one suggestion per sample; returns counts (and, under
    "flags" and "missing", {name: count} for content flags and for versions lacking a metric).
    `workers`: processes that make the content checks of versions without them (1: this one).

    A sample the rule has no verdict for loses any older suggestion. Reviews are untouched.
    """
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    ds = store.dataset(dataset)
    parsed = [c if isinstance(c, Condition) else parse_condition(c) for c in conditions]
    needed = _needed(rule, parsed, metric)
    chosen_scorers = pick_scorers(store, ds.id, needed, scorers)
    absent = [m for m in needed if m not in chosen_scorers]
    if absent:
        what = ", ".join(f"{_how(m)[0]} ({m})" for m in absent)
        run_it = " and ".join(f"`{_how(m)[1]}`" for m in absent)
        raise ConfigError(
            f"the {rule} rule needs {what} and dataset {ds.name!r} has none: run {run_it}"
            " first (only missing scores are computed)"
        )
    if store.dataset_scorers(ds.id, RELEVANCE_METRIC):
        chosen_scorers.update(pick_scorers(store, ds.id, [RELEVANCE_METRIC], scorers))
    settings = {"rule": rule, "scorers": chosen_scorers, "conditions": [str(c) for c in parsed],
                "prefer": list(prefer), "otherwise": otherwise, "percent": percent,
                "metric": metric, "margin": margin}  # fmt: skip
    name = rule if rule != "threshold" else f"threshold:{' and '.join(map(str, parsed))}"
    # A chunk of samples at a time: verdicts are staged in the database as they are made
    # and published in one transaction (at 1M samples the whole dataset's versions held at
    # once took 2.5 GB). topk ranks every sample: it keeps four numbers a sample until the end.
    with (
        store.run("suggest", ds.id, settings) as run,
        store.staged_suggestions(run.id) as staged,
        CheckPool(workers) as pool,
    ):
        counts = Counts([*needed, RELEVANCE_METRIC])
        ranking = Ranking(metric or "ifd_ppl", percent) if rule == "topk" else None
        checks = MissingChecks(store, ds.id, run.id, pool)
        walk = iter_scored_versions(store, ds.id, chosen_scorers, limit=limit, checks=checks)
        for part in walk:
            counts.versions(part)
            if ranking is not None:
                verdicts = ranking.take(part)
            else:
                verdicts = apply_rule(
                    rule, part, conditions=parsed, prefer=prefer, otherwise=otherwise,
                    percent=percent, metric=metric, margin=margin,
                ).items()  # fmt: skip
            staged.add(counts.rows(verdicts, name))
        checks.save()
        if ranking is not None:
            staged.add(counts.rows(ranking.choices(), name))
        with store.transaction():
            staged.publish()
        run.counters = {**counts.counters(), "checked": checks.checked}
    return run.counters
