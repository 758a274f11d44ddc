"""`suggest` checks the versions it finds without content checks as it walks, one row a
version, and judges them exactly as if the whole text family had been scored first.

The data: the recorded SmolLM2 replies (empty, truncated, meta-talk, loops; labelled in
test_content_checks.py) stored as `reflection reflect` stores them, each beside its original.
"""

from __future__ import annotations

import re

import pytest
from test_content_checks import as_candidate, recorded

from reflection.records import CHECKS_METRIC, Score
from reflection.scoring.runner import score_text
from reflection.scoring.text import SCORER as TEXT
from reflection.select.suggestions import suggest

pytestmark = pytest.mark.both_backends


def build(store, name: str) -> list[int]:
    """The recorded replies as dataset `name`, IFD and r-IFD on every version (made up, so
    the selective rule would take many reflections if their flags did not stop it)."""
    ds = store.ensure_dataset(name)
    pairs = [as_candidate(line) for line in recorded()]
    samples = []
    for i, (sample, _) in enumerate(pairs):
        sample.position = i
        samples.append(sample)
    store.add_samples(ds.id, samples)
    ids = store.sample_ids(ds.id)
    scores = []
    for i, (sample_id, (_, candidate)) in enumerate(zip(ids, pairs, strict=True)):
        # Each reply as its own sample's (the recorded ones were planned for a sample 1).
        candidate.sample_id, candidate.job_key = sample_id, None
        cid = store.add_candidate(candidate)
        scores += [
            Score(sample_id, "ifd_ppl", 0.9, "student"),
            Score(sample_id, "rifd_ppl", 0.9, "student"),
            Score(sample_id, "ifd_ppl", 0.5 + i / 100, "student", candidate_id=cid),
            Score(sample_id, "rifd_ppl", 0.5 + i / 100, "student", candidate_id=cid),
        ]
    store.put_scores(scores)
    return ids


def text_rows(store, ids: list[int]) -> dict[tuple[int, int | None], dict[str, Score]]:
    """The text scorer's rows of these samples, by (position, version: None or its kind)."""
    position = {sid: i for i, sid in enumerate(ids)}
    kinds = {c.id: c.kind for cs in store.candidates_for_samples(ids).values() for c in cs}
    found: dict = {}
    for sample_id, scores in store.scores_for_samples(ids).items():
        for s in scores:
            if s.scorer == TEXT:
                version = None if s.candidate_id is None else kinds[s.candidate_id]
                found.setdefault((position[sample_id], version), {})[s.metric] = s
    return found


def by_position(store, dataset: str, ids: list[int]) -> dict:
    """A dataset's suggestions by position, with candidates named by their sample's position
    in the reasons (the two datasets' candidates have different ids)."""
    position = {sid: i for i, sid in enumerate(ids)}
    candidates = [c for cs in store.candidates_for_samples(ids).values() for c in cs]
    named = {c.id: f"#p{position[c.sample_id]}" for c in candidates}
    kinds = {c.id: c.kind for c in candidates}
    found = store.suggestions(store.dataset(dataset).id)
    return {
        i: (kinds.get(s.candidate_id), s.decision,
            re.sub(r"#(\d+)", lambda m: named[int(m[1])], s.reason), s.confidence)
        for i, sid in enumerate(ids)
        if (s := found.get(sid)) is not None
    }  # fmt: skip


def test_suggest_checks_on_its_way_as_the_text_family_would(store, monkeypatch):
    scored_first = build(store, "scored")
    score_text(store, "scored")
    before = suggest(store, "scored")
    walked = build(store, "walked")
    counts = suggest(store, "walked")

    # The same verdicts, reasons and flag counts as with every text score made first.
    assert by_position(store, "walked", walked) == by_position(store, "scored", scored_first)
    assert counts["flags"] == before["flags"] and counts["flags"]
    assert {"empty", "truncated", "meta_talk", "repetitive"} <= set(counts["flags"])
    versions = 2 * len(walked)
    assert counts["checked"] == versions and before["checked"] == 0

    # One row a version: the checks' flags, with their reasons, as score_text writes them.
    mine, theirs = text_rows(store, walked), text_rows(store, scored_first)
    assert len(mine) == versions and all(set(row) == {CHECKS_METRIC} for row in mine.values())
    assert {k: (r[CHECKS_METRIC].value, r[CHECKS_METRIC].detail) for k, r in mine.items()} == {
        k: (r[CHECKS_METRIC].value, r[CHECKS_METRIC].detail) for k, r in theirs.items()
    }
    assert sum(map(len, theirs.values())) > 10 * versions  # what the text family costs

    # Checked once: the next suggest reads no text at all.
    def no_texts(*args, **kwargs):
        raise AssertionError("a text was read")

    monkeypatch.setattr(store, "candidates_for_samples", no_texts)
    monkeypatch.setattr(store, "samples", no_texts)
    again = suggest(store, "walked")
    assert again["checked"] == 0 and again["flags"] == counts["flags"]
    monkeypatch.undo()

    # `score --metric text` still adds the statistics to versions suggest only checked.
    summary = score_text(store, "walked")
    assert summary.scored == versions and summary.skipped == 0
    assert text_rows(store, walked).keys() == theirs.keys()
    assert {k: set(r) for k, r in text_rows(store, walked).items()} == {
        k: set(r) for k, r in theirs.items()
    }
    assert score_text(store, "walked").skipped == versions


def test_a_version_checked_later_is_checked_once(store):
    """A reflection added after a suggest is checked by the next one, alone."""
    ids = build(store, "walked")
    first = suggest(store, "walked")
    assert first["checked"] == 2 * len(ids)
    original = store.sample(ids[2])
    from reflection.records import Candidate

    store.add_candidate(
        Candidate(ids[2], "instruction", instruction=original.instruction, output="")
    )
    second = suggest(store, "walked")
    assert second["checked"] == 1
    assert second["flags"]["empty"] == first["flags"].get("empty", 0) + 1
    rows = text_rows(store, ids)
    assert rows[(2, "instruction")][CHECKS_METRIC].detail["flags"].keys() == {"empty"}


def test_checks_made_on_worker_processes_equal_those_made_in_place(store, monkeypatch):
    """Several processes, a chunk's checks started before the chunk before it is judged: the
    same rows, flags and suggestions as one process making them as it goes."""
    from reflection.scoring import check_pool
    from reflection.select import suggestions

    in_place = build(store, "in place")
    alone = suggest(store, "in place", workers=1)
    monkeypatch.setattr(check_pool, "MIN_PARALLEL", 2)  # every chunk shared out
    monkeypatch.setattr(suggestions, "CHUNK", 3)  # many chunks, each read ahead
    started = []
    real_submit = check_pool.CheckPool.submit

    def submit(self, jobs):
        pending = real_submit(self, jobs)
        started.append((len(jobs), self._pool is not None and len(self._pool._processes)))
        return pending

    monkeypatch.setattr(check_pool.CheckPool, "submit", submit)
    pooled = build(store, "pooled")
    shared = suggest(store, "pooled", workers=3)

    assert len(started) == -(-len(pooled) // 3) and all(n == 3 for _, n in started)
    assert sum(jobs for jobs, _ in started) == shared["checked"] == 2 * len(pooled)
    assert shared == alone
    assert by_position(store, "pooled", pooled) == by_position(store, "in place", in_place)
    mine, theirs = text_rows(store, pooled), text_rows(store, in_place)
    assert {k: (r[CHECKS_METRIC].value, r[CHECKS_METRIC].detail) for k, r in mine.items()} == {
        k: (r[CHECKS_METRIC].value, r[CHECKS_METRIC].detail) for k, r in theirs.items()
    }
