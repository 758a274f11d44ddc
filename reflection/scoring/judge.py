"""An LLM judge: 1-10 ratings of each version, and pairwise comparisons in both orders.

- `judge` (every version): the oracle rates one instruction-response pair for helpfulness,
  relevance, accuracy and level of detail on a 1-10 scale with a one-sentence reason, in the
  manner of AlpaGasus (Chen et al. 2023), whose rating prompt this follows.
- `judge_pair` (each reflected version): the oracle scores the original and the reflected pair
  side by side, once in each order; the stored value is the reflected pair's mean score, and
  `judge_margin` is that minus the original's mean. Asking both ways cancels the judge's
  position bias (Zheng et al. 2023, "Judging LLM-as-a-judge").

Requests go through `reflection.reflect.oracle.Oracle` (retries, rate limits) and the store's request
cache: a repeated request is never paid for twice. A reply no parser can read is stored as a
score with value None and the reason in its detail, never as an exception.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..records import Score
from ..reflect.oracle import (
    Oracle,
    OracleConfig,
    Reply,
    reply_from_response,
    request_body,
    request_key,
)
from ..store import Store
from .versions import ScoredVersions, Version, batches, dataset_versions

SYSTEM = (
    "You are a helpful and precise assistant for checking the quality of instruction-tuning data."
)
CRITERIA = "helpfulness, relevance, accuracy and level of detail"
SINGLE = """We would like to request your feedback on the performance of an AI assistant in response to the instruction and the given input displayed below.

{pair}

Please rate the {criteria} of the response. Give an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.
Reply in exactly this format, and nothing else:
Score: <a number from 1 to 10>
Reason: <one short sentence>"""
PAIRWISE = """We would like to request your feedback on two instruction-response pairs displayed below, as examples for training an AI assistant.

[The Start of Pair 1]
{first}
[The End of Pair 1]

[The Start of Pair 2]
{second}
[The End of Pair 2]

Please rate each pair for the {criteria} of its response to its instruction. Each pair receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance. Avoid any position bias: the order in which the pairs appear must not affect your judgement.
Reply in exactly this format, and nothing else:
Scores: <score of pair 1> <score of pair 2>
Reason: <one short sentence>"""

_NUMBER = r"(10(?:\.0+)?|[0-9](?:\.\d+)?)(?![\d.])"
_SCORE = re.compile(r"(?:score|rating)\s*[:=]?\s*\**\s*" + _NUMBER + r"(?:\s*/\s*10)?", re.I)
_OUT_OF = re.compile(_NUMBER + r"\s*/\s*10\b")
_LEADING = re.compile(r"^\s*\**\s*" + _NUMBER + r"\s*\**\s*$", re.M)
_TWO = re.compile(r"^\s*(?:scores?\s*[:=]?\s*)?" + _NUMBER + r"\s*(?:[,;/ ]|and)\s*" + _NUMBER + r"\s*$", re.I | re.M)  # fmt: skip
_LABELLED = re.compile(r"pair\s*([12])\s*[:=)\-]?\s*(?:score\s*[:=]?\s*)?\**\s*" + _NUMBER, re.I)
_REASON = re.compile(r"^\s*(?:reason|explanation)\s*[:=]\s*(.+)$", re.I | re.M)
METRICS = ("judge", "judge_pair", "judge_margin")


def render_pair(instruction: str, input: str, output: str) -> str:
    parts = [f"[Instruction]\n{instruction}"]
    if input:
        parts.append(f"[Input]\n{input}")
    parts.append(f"[Response]\n{output}")
    return "\n\n".join(parts)


def single_messages(version: Version) -> list[dict]:
    pair = render_pair(version.instruction, version.input, version.output)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": SINGLE.format(pair=pair, criteria=CRITERIA)},
    ]


def pairwise_messages(first: Version, second: Version) -> list[dict]:
    text = PAIRWISE.format(
        first=render_pair(first.instruction, first.input, first.output),
        second=render_pair(second.instruction, second.input, second.output),
        criteria=CRITERIA,
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def _valid(value: str) -> float | None:
    number = float(value)
    return number if 1 <= number <= 10 else None


def _reason(text: str) -> str:
    match = _REASON.search(text)
    if match:
        return match.group(1).strip()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if len(lines) > 1 else ""


def _json(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        found = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def parse_rating(text: str) -> tuple[float | None, str]:
    """(score 1-10 or None, reason) from a judge's reply, in whichever of the usual shapes."""
    data = _json(text)
    if data is not None:
        for key in ("score", "rating", "overall"):
            if isinstance(data.get(key), int | float) and 1 <= data[key] <= 10:
                return float(data[key]), str(data.get("reason") or data.get("explanation") or "")
    for pattern in (_SCORE, _OUT_OF, _LEADING):
        match = pattern.search(text)
        if match and (value := _valid(match.group(1))) is not None:
            return value, _reason(text)
    return None, ""


def _two_scores(value: object) -> TypeGuard[list[int | float]]:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and 1 <= v <= 10 for v in value)
    )


def parse_pair(text: str) -> tuple[tuple[float, float] | None, str]:
    """((score of pair 1, score of pair 2) or None, reason) from a pairwise reply."""
    data = _json(text)
    if data is not None:
        keys = (("score_1", "score_2"), ("pair_1", "pair_2"), ("score1", "score2"))
        candidates = [[data.get(a), data.get(b)] for a, b in keys] + [data.get("scores")]
        for scores in candidates:
            if _two_scores(scores):
                return (float(scores[0]), float(scores[1])), str(data.get("reason") or "")
    match = _TWO.search(text)
    if match:
        a, b = _valid(match.group(1)), _valid(match.group(2))
        if a is not None and b is not None:
            return (a, b), _reason(text)
    labelled: dict[str, float | None] = {}
    for which, value in _LABELLED.findall(text):
        labelled.setdefault(which, _valid(value))
    first, second = labelled.get("1"), labelled.get("2")
    if first is not None and second is not None:
        return (first, second), _reason(text)
    return None, ""


# --------------------------------------------------------------------------- asking


@dataclass
class JudgeSummary:
    family: str
    scorer: str
    scored: int = 0
    skipped: int = 0
    failed: int = 0
    cached: int = 0
    requests: int = 0
    run_id: int | None = None


async def _ask(
    oracle: Oracle,
    store: Store,
    body: dict[str, Any],
    summary: JudgeSummary,
    gate: asyncio.Semaphore,
) -> Reply:
    key = request_key(body)
    cached = store.cache_get(key)
    if cached is not None:
        summary.cached += 1
        return reply_from_response(cached)
    async with gate:
        reply = await oracle.complete(body)
    summary.requests += 1
    if reply.status in ("ok", "truncated") and reply.response is not None:
        store.cache_put(key, body["model"], body, reply.response)
    return reply


def _body(config: OracleConfig, messages: list[dict]) -> dict:
    extra = {"temperature": 0.0 if config.temperature is None else config.temperature}
    if config.max_tokens:
        extra["max_tokens"] = config.max_tokens
    return request_body(config.model, messages, extra)


def _detail(reply: Reply, reason: str, error: str = "") -> dict:
    detail = {"reason": reason, "raw": reply.text[:2000], "status": reply.status}
    if error or reply.error:
        detail["error"] = error or reply.error
    return detail


async def _judge_async(
    store: Store,
    dataset_id: int,
    config: OracleConfig,
    pairwise: bool,
    limit: int | None,
    kinds: Iterable[str] | None,
    progress: Callable[[int], None] | None,
    chunk: int,
) -> JudgeSummary:
    scorer = config.model
    family = "judge_pair" if pairwise else "judge"
    summary = JudgeSummary(family, scorer)
    settings = {"metric": family, "scorer": scorer, **config.settings()}
    with store.run("score", dataset_id, settings) as run:
        summary.run_id = run.id
        done = ScoredVersions(store, family, scorer)

        def jobs() -> Iterator[tuple[Version, Version]]:  # (version, its original: pairwise)
            for _sample, versions in dataset_versions(
                store, dataset_id, kinds=kinds, limit=limit, done=done
            ):
                original = versions[0]
                for version in versions:
                    if pairwise and version.candidate_id is None:
                        continue
                    if version.key in done:
                        summary.skipped += 1
                        continue
                    yield version, original

        gate = asyncio.Semaphore(config.concurrency)
        async with Oracle(config) as oracle:
            for part in batches(jobs(), chunk):  # read a chunk at a time, not all at once
                if pairwise:
                    scores = await asyncio.gather(*(_pairwise(oracle, store, config, v, o, summary, gate, run.id) for v, o in part))  # fmt: skip
                    rows = [s for group in scores for s in group]
                else:
                    rows = await asyncio.gather(*(_single(oracle, store, config, v, summary, gate, run.id) for v, _ in part))  # fmt: skip
                store.put_scores(rows)
                summary.scored += len(part)
                summary.failed += sum(1 for r in rows if r.value is None and r.metric != "judge_margin")  # fmt: skip
                run.counters = _counters(summary)
                if progress:
                    progress(len(part))
        run.counters = _counters(summary)
    return summary


def _counters(summary: JudgeSummary) -> dict:
    return {"scored": summary.scored, "skipped": summary.skipped, "failed": summary.failed,
            "cached": summary.cached, "requests": summary.requests}  # fmt: skip


async def _single(
    oracle: Oracle,
    store: Store,
    config: OracleConfig,
    version: Version,
    summary: JudgeSummary,
    gate: asyncio.Semaphore,
    run_id: int | None,
) -> Score:
    reply = await _ask(oracle, store, _body(config, single_messages(version)), summary, gate)
    value, reason = parse_rating(reply.text) if reply.status != "error" else (None, "")
    error = "" if value is not None or reply.status == "error" else "no 1-10 score in the reply"
    return Score(version.sample_id, "judge", value, config.model, version.candidate_id,
                 _detail(reply, reason, error), run_id)  # fmt: skip


async def _pairwise(
    oracle: Oracle,
    store: Store,
    config: OracleConfig,
    version: Version,
    original: Version,
    summary: JudgeSummary,
    gate: asyncio.Semaphore,
    run_id: int | None,
) -> list[Score]:
    forward, backward = await asyncio.gather(
        _ask(oracle, store, _body(config, pairwise_messages(original, version)), summary, gate),
        _ask(oracle, store, _body(config, pairwise_messages(version, original)), summary, gate),
    )
    orders = []
    reflected, base = [], []
    for name, reply, flip in (
        ("original first", forward, False),
        ("reflection first", backward, True),
    ):
        scores, reason = parse_pair(reply.text) if reply.status != "error" else (None, "")
        entry = {"order": name, "scores": scores, "reason": reason, "status": reply.status,
                 "raw": reply.text[:1000]}  # fmt: skip
        if reply.error:
            entry["error"] = reply.error
        orders.append(entry)
        if scores is not None:
            ours, theirs = (scores[0], scores[1]) if flip else (scores[1], scores[0])
            reflected.append(ours)
            base.append(theirs)
    detail: dict[str, Any] = {"orders": orders}
    value = margin = None
    if reflected:
        value = sum(reflected) / len(reflected)
        original_mean = sum(base) / len(base)
        margin = value - original_mean
        detail.update(original=original_mean, both_orders=len(reflected) == 2)
    else:
        detail["error"] = "no pair of 1-10 scores in either reply"
    sid, cid = version.sample_id, version.candidate_id
    return [
        Score(sid, "judge_pair", value, config.model, cid, detail, run_id),
        Score(
            sid,
            "judge_margin",
            margin,
            config.model,
            cid,
            {"original": detail.get("original")},
            run_id,
        ),  # fmt: skip
    ]


def score_judge(
    store: Store,
    dataset: str | int,
    config: OracleConfig,
    *,
    pairwise: bool = False,
    limit: int | None = None,
    kinds: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> JudgeSummary:
    """Rate every version (or compare each reflection with its original) that lacks it."""
    ds = store.dataset(dataset)
    return asyncio.run(_judge_async(store, ds.id, config, pairwise, limit, kinds, progress, chunk))
