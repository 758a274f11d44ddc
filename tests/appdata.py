"""A small scored dataset built through the Store API, with its facts computable in Python.

Used by the bulk, dashboard, jobs and page tests: every value follows from the sample's index,
so a test can recompute what a query should return without asking the store.
"""

from __future__ import annotations

from reflection.records import Candidate, Review, Sample, Score, Suggestion
from reflection.store import Store

SCORER = "test-student"


def original_ifd(i: int) -> float:
    return 0.5 + (i % 10) / 10  # 0.5 .. 1.4: every tenth sample from 1.0 up is misaligned


def response_ifd(i: int) -> float:
    return original_ifd(i) - 0.2 if i % 4 else original_ifd(i) + 0.1


def instruction_ifd(i: int) -> float:
    return original_ifd(i) - 0.05


def drift(i: int) -> float:
    """The `drift` metric is a similarity to the original: 1 = same topic, < 0.5 = drifted."""
    return 0.4 + (i % 5) * 0.15  # 0.4 .. 1.0


def reflection_failed(i: int) -> bool:
    return i % 7 == 3


def suggested_decision(i: int) -> str:
    return "reject" if i % 10 == 9 else "accept"


def suggested_kind(i: int) -> str:
    return "original" if i % 3 == 0 else "response"


def build(store: Store, n: int = 30, name: str = "demo", hostile: bool = True) -> dict:
    """Dataset `name` with n samples, two candidates each, scores and suggestions.

    Samples whose index satisfies `reflection_failed` get only failed candidates (no scores
    for them). Returns {"dataset": Dataset, "ids": [sample ids by index],
    "candidates": {(index, kind): candidate id}}.
    """
    dataset = store.ensure_dataset(name)
    samples = [
        Sample(
            instruction=f"Instruction {i}: explain topic {i}",
            output=f"Answer {i}.",
            position=i,
        )
        for i in range(n)
    ]
    if hostile and n:
        samples[
            0
        ].instruction = (
            "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))"
        )
    store.add_samples(dataset.id, samples)
    ids = store.sample_ids(dataset.id)
    candidates: dict[tuple[int, str], int] = {}
    scores, suggestions = [], []
    for i, sample_id in enumerate(ids):
        failed = reflection_failed(i)
        for kind in ("instruction", "response"):
            candidate = Candidate(
                sample_id=sample_id,
                kind=kind,
                instruction=f"Better instruction {i}"
                if kind == "instruction"
                else samples[i].instruction,
                output=f"A much better answer {i}.",
                status="failed" if failed else "ok",
                error="no JSON in reply" if failed else "",
                critique=f"critique {i}",
                model="test-oracle",
            )
            candidates[(i, kind)] = store.add_candidate(candidate)
        scores.append(Score(sample_id, "ifd_ppl", original_ifd(i), SCORER))
        scores.append(Score(sample_id, "words_output", float(len(samples[i].output)), "fixture"))
        if failed:
            continue
        for kind, value in (("instruction", instruction_ifd(i)), ("response", response_ifd(i))):
            cid = candidates[(i, kind)]
            scores.append(Score(sample_id, "ifd_ppl", value, SCORER, candidate_id=cid))
            scores.append(Score(sample_id, "drift", drift(i), "minilm", candidate_id=cid))
            scores.append(Score(sample_id, "words_output", 24.0, "fixture", candidate_id=cid))
        kind = suggested_kind(i)
        suggestions.append(
            Suggestion(
                sample_id=sample_id,
                candidate_id=None if kind == "original" else candidates[(i, kind)],
                rule="test",
                reason=f"test suggests {kind}",
                confidence=0.5,
                decision=suggested_decision(i),
            )
        )
    store.put_scores(scores)
    store.put_suggestions(suggestions)
    return {"dataset": dataset, "ids": ids, "candidates": candidates}


def decide(store: Store, built: dict, decisions: dict[int, tuple[str, str | None]], who: str):
    """Append reviews: {index: (decision, kind or None for the original)}."""
    reviews = []
    for i, (decision, kind) in decisions.items():
        cid = built["candidates"][(i, kind)] if kind else None
        reviews.append(
            Review(sample_id=built["ids"][i], decision=decision, candidate_id=cid, annotator=who)
        )
    return store.add_reviews(reviews)
