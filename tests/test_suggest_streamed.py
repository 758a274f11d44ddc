"""`suggest` walks a dataset a chunk at a time and stages its verdicts: what it stores and
counts equals each rule run over the whole dataset at once (rules.py's pure functions)."""

from __future__ import annotations

import pytest
from appdata import SCORER, build

import reflection.select.streamed as streamed
import reflection.select.suggestions as suggestions
import reflection.store.suggestion_staging as suggestion_staging
from reflection.records import Score
from reflection.select.rules import apply_rule
from reflection.select.suggestions import pick_scorers, scored_versions, suggest

pytestmark = pytest.mark.both_backends

N = 45
RULES = [
    ("selective", {}),
    ("threshold", {"conditions": ["ifd_ppl<0.8", "drift>=0.6"], "otherwise": "none"}),
    ("topk", {"percent": 30}),
    ("judge", {"margin": 1.0}),
]


@pytest.fixture
def built(store):
    """appdata's dataset, plus r-IFD and judge ratings on some versions (gaps on purpose)."""
    made = build(store, N)
    scores = []
    for i, sample_id in enumerate(made["ids"]):
        if i % 4 != 1:
            scores.append(Score(sample_id, "rifd_ppl", 0.5 + (i % 7) / 10, SCORER))
            scores.append(Score(sample_id, "judge", float(i % 5), "judge"))
        for n, kind in enumerate(("instruction", "response")):
            cid = made["candidates"][(i, kind)]
            if i % 6:
                scores.append(Score(sample_id, "rifd_ppl", 0.4 + ((i + n) % 9) / 10, SCORER, candidate_id=cid))  # fmt: skip
                scores.append(Score(sample_id, "judge", float((i * 3 + n) % 7), "judge", candidate_id=cid))  # fmt: skip
    store.put_scores(scores)
    return made


def stored(store, dataset_id: int) -> dict:
    return {sid: (s.candidate_id, s.rule, s.reason, s.confidence, s.decision)
            for sid, s in store.suggestions(dataset_id).items()}  # fmt: skip


@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_chunked_suggest_equals_the_rule_over_the_whole_dataset(store, built, monkeypatch, rule, options):  # fmt: skip
    dataset_id = built["dataset"].id
    monkeypatch.setattr(suggestions, "CHUNK", 7)  # 45 samples: seven chunks, the last short
    monkeypatch.setattr(streamed, "BLOCK", 4)  # topk's verdicts a few ranks at a time
    monkeypatch.setattr(suggestion_staging, "BATCH", 3)  # and staged three rows at a time
    counts = suggest(store, dataset_id, rule, **options)
    found = stored(store, dataset_id)

    # The oracle: the pure rule over every sample at once (the content checks are stored by
    # the first suggest, so the scorers and flags read here are the same).
    metrics = suggestions._needed(rule, [suggestions.parse_condition(c)
                                         for c in options.get("conditions", [])], None)  # fmt: skip
    scorers = pick_scorers(store, dataset_id, metrics)
    samples = scored_versions(store, dataset_id, scorers)
    verdicts = apply_rule(
        rule, samples, **{k: v for k, v in options.items() if k != "conditions"},
        conditions=[suggestions.parse_condition(c) for c in options.get("conditions", [])],
    )  # fmt: skip
    name = rule if rule != "threshold" else "threshold:" + " and ".join(options["conditions"])
    expected = {sid: (c.candidate_id, name, c.reason, c.confidence, c.decision)
                for sid, c in verdicts.items() if c is not None}  # fmt: skip
    assert found == expected and found
    assert counts["samples"] == N and counts["suggested"] == len(expected)
    assert counts["missing"] == streamed.missing_scores(samples, [*metrics, "relevance"])
    decisions = [c.decision for c in verdicts.values() if c is not None]
    assert counts["reject"] == decisions.count("reject")

    # Once more in one chunk: the same verdicts and counts, and nothing left to check.
    monkeypatch.setattr(suggestions, "CHUNK", 10_000)
    assert counts["checked"] > N  # the first run checked every version on its way
    assert suggest(store, dataset_id, rule, **options) == {**counts, "checked": 0}
    assert stored(store, dataset_id) == found


def test_a_rerun_that_has_no_verdict_for_a_sample_drops_its_old_suggestion(store, built):
    dataset_id = built["dataset"].id
    suggest(store, dataset_id, "threshold", conditions=["ifd_ppl<0.9"], otherwise="reject")
    before = stored(store, dataset_id)
    suggest(store, dataset_id, "threshold", conditions=["ifd_ppl<0.9"], otherwise="none")
    after = stored(store, dataset_id)
    assert set(after) < set(before)
    assert all(after[sid] == before[sid] for sid in after)


def test_the_versions_a_rule_sees_are_those_scoring_builds_from_the_texts(store, built):
    """`iter_scored_versions` reads ids and kinds only; the versions must be exactly those
    `dataset_versions` makes from the rows' texts: failed candidates (appdata's) and one with
    neither instruction nor output are left out, an answer-only one and a child are kept."""
    from reflection.records import Candidate
    from reflection.scoring.versions import dataset_versions

    dataset_id = built["dataset"].id
    ids = built["ids"]
    parent = built["candidates"][(2, "instruction")]
    store.add_candidates([
        Candidate(sample_id=ids[2], kind="response", output="answer only"),
        Candidate(sample_id=ids[2], kind="instruction", instruction="", output=""),
        Candidate(sample_id=ids[2], kind="response", output="x", status="error"),
        Candidate(sample_id=ids[2], kind="response", instruction="i", output="o", parent_id=parent),
    ])  # fmt: skip
    expected = {
        sample.id: [(v.candidate_id, v.kind, v.parent_id) for v in versions]
        for sample, versions in dataset_versions(store, dataset_id)
    }
    found = {
        sample_id: [(s.candidate_id, s.kind, s.parent_id) for s in versions]
        for part in suggestions.iter_scored_versions(store, dataset_id, {}, chunk=4)
        for sample_id, versions in part.items()
    }
    assert found == expected
    assert len(expected[ids[2]]) == 5
    assert any(len(v) == 1 for v in expected.values())  # a sample whose reflection failed


def test_a_rule_reads_the_same_scores_and_flags_as_from_every_score(store, built):
    """`iter_scored_versions` asks the store only for the rule's metrics and scores that can
    flag: each version's values and flags must be those every stored score gives."""
    from reflection.scoring.checks import version_flags

    dataset_id = built["dataset"].id
    suggest(store, dataset_id, "judge")  # stores the content checks first
    store.put_scores([Score(built["ids"][3], "words_output", 2.0, "other", detail={"flags": {"odd": "x"}})])  # fmt: skip
    scorers = pick_scorers(store, dataset_id, ["ifd_ppl"])  # the judge flags all the same
    found = {
        (sample_id, v.candidate_id): (v.scores, v.flags)
        for part in suggestions.iter_scored_versions(store, dataset_id, scorers, chunk=8)
        for sample_id, versions in part.items()
        for v in versions
    }
    every = store.scores_for_samples(built["ids"])
    expected = {}
    for key in found:
        scores = [s for s in every.get(key[0], []) if s.candidate_id == key[1]]
        values = {s.metric: s.value for s in scores if scorers.get(s.metric) == s.scorer}
        expected[key] = (values, version_flags(scores))
    assert found == expected
    flagged = {name for _, flags in found.values() for name in flags}
    assert {"odd", "judge_low"} <= flagged  # a detail's flags and a low rating both reach it
    assert any("ifd_ppl" in values for values, _ in found.values())
