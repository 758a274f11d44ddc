"""A small review database built with the Store API: the fixtures of the app tests."""

from __future__ import annotations

from pathlib import Path

from reflection import Candidate, Sample, Score, Store, Suggestion

HOSTILE = (
    '<script>window.__pwned = 1; alert("x")</script> <img src=x onerror="window.__pwned=2">'
    " [click me](javascript:window.__pwned=3)"
)


def build_review_db(path: Path, n: int = 6, dataset: str = "demo") -> list[int]:
    """n samples, each with a response candidate and IFD scores; sample 3 is hostile."""
    with Store(path) as store:
        ds = store.ensure_dataset(dataset)
        samples = []
        for i in range(n):
            instruction = f"Explain topic number {i} in simple words."
            output = f"Topic {i} is about cats and their habits."
            if i == 2:
                instruction, output = f"Repeat this text: {HOSTILE}", f"Here it is: {HOSTILE}"
            samples.append(Sample(instruction=instruction, output=output, position=i))
        store.add_samples(ds.id, samples)
        ids = store.sample_ids(ds.id)
        candidates = [
            Candidate(
                sample_id=sid,
                kind="response",
                instruction=sample.instruction,
                output=sample.output.replace("cats", "dogs") + " They love walks.",
                critique="The answer is thin.",
                raw="RAW: " + sample.output,
                status="failed" if k == 4 else "ok",
                model="demo-oracle",
            )
            for k, (sid, sample) in enumerate(zip(ids, samples, strict=True))
        ]
        store.add_candidates(candidates)
        store.put_scores(
            [
                Score(sample_id=sid, metric="ifd_ppl", value=0.6 + 0.1 * k)
                for k, sid in enumerate(ids)
            ]
            + [
                Score(sample_id=c.sample_id, candidate_id=c.id, metric="ifd_ppl", value=0.55)
                for c in candidates
            ]
        )
        store.put_suggestions(
            [
                Suggestion(
                    sample_id=c.sample_id,
                    candidate_id=c.id,
                    rule="ifd",
                    reason="IFD drops",
                    confidence=0.8,
                )
                for c in candidates[:3]
            ]
        )
    return ids


def build_checked_review_db(path: Path) -> tuple[list[int], int]:
    """The review database plus an empty, truncated reply on the first sample, with the
    content checks run: (sample ids, the empty candidate's id)."""
    from reflection.scoring.runner import score_text

    ids = build_review_db(path)
    with Store(path) as store:
        first = store.sample(ids[0])
        empty = store.add_candidate(
            Candidate(ids[0], "response", instruction=first.instruction, output="",
                      status="truncated", error="reply cut off at the token limit (512)")
        )  # fmt: skip
        score_text(store, "demo")
    return ids, empty
