"""The LLM judge: parsing table-driven, then real HTTP against the fault-injecting test server."""

from __future__ import annotations

import pytest
from oracle_server import DEFAULTS, attempts_to_answer

from reflection import Candidate, Sample
from reflection.reflect.settings import OracleConfig
from reflection.scoring.judge import (
    pairwise_messages,
    parse_pair,
    parse_rating,
    score_judge,
    single_messages,
)
from reflection.scoring.versions import Version
from reflection.select.suggestions import suggest


@pytest.mark.parametrize(
    ("text", "score", "reason"),
    [
        ("Score: 8\nReason: Accurate and complete.", 8.0, "Accurate and complete."),
        ("score = 7.5", 7.5, ""),
        ("Rating: **9**/10\nExplanation: thorough", 9.0, "thorough"),
        ("I would give this response 6/10.\nIt misses the example.", 6.0, "It misses the example."),
        ("10\nReason: perfect", 10.0, "perfect"),
        ('Here you go: {"score": 3, "reason": "wrong facts"}', 3.0, "wrong facts"),
        ("Score: 12", None, ""),  # out of range is not a score
        ("Score: 0", None, ""),
        ("The response is fine.", None, ""),
        ("", None, ""),
    ],
)
def test_parse_rating(text, score, reason):
    assert parse_rating(text) == (score, reason)


@pytest.mark.parametrize(
    ("text", "scores"),
    [
        ("Scores: 7 9\nReason: the second is fuller.", (7.0, 9.0)),
        ("8, 6\nThe first is more accurate.", (8.0, 6.0)),
        ("Pair 1: 4\nPair 2: 8.5\nReason: x", (4.0, 8.5)),
        ("Pair 1 score: 7/10. Pair 2 score: 5/10.", (7.0, 5.0)),
        ('{"score_1": 6, "score_2": 7, "reason": "r"}', (6.0, 7.0)),
        ('{"scores": [2, 10]}', (2.0, 10.0)),
        ("Scores: 7 11", None),
        ("Pair 1 is better.", None),
        ("I am sorry, but I would rather talk about the weather today.", None),
    ],
)
def test_parse_pair(text, scores):
    assert parse_pair(text)[0] == scores


def test_prompts_show_both_pairs_and_escape_nothing():
    a = Version(1, None, "original", "Name a <b>river</b>.", "", "Nile")
    b = Version(1, 2, "response", "Name a <b>river</b>.", "", "The Nile, 6,650 km long.")
    single = single_messages(a)[1]["content"]
    assert "[Instruction]\nName a <b>river</b>.\n\n[Response]\nNile" in single
    assert "scale of 1 to 10" in single
    pair = pairwise_messages(a, b)[1]["content"]
    assert pair.index("Nile\n[The End of Pair 1]") < pair.index("The Nile, 6,650 km long.")


@pytest.fixture
def judged_store(store):
    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(f"Explain topic {i}.", output=" ".join(f"s{k}" for k in range(20))) for i in range(3)])  # fmt: skip
    ids = store.sample_ids(ds.id)
    # A hundred different words: one word a hundred times is a loop the content checks flag.
    words = " ".join(str(k * 7919 % 100003) for k in range(100))
    cids = store.add_candidates([Candidate(sid, "response", output=words) for sid in ids])
    return store, ds, ids, cids


def _config(server, **extra) -> OracleConfig:
    return OracleConfig(model="judge-model", base_url=server.base_url, api_key="sk-test-secret",
                        concurrency=4, max_attempts=4, backoff=0.01, timeout=5, **extra)  # fmt: skip


def test_single_ratings_are_stored_and_cached(fake_oracle, judged_store):
    store, ds, ids, cids = judged_store
    summary = score_judge(store, ds.id, _config(fake_oracle))
    assert (summary.scored, summary.failed, summary.requests, summary.cached) == (6, 0, 6, 0)
    scores = {(s.candidate_id, s.metric): s for s in store.scores_for(ids[0])}
    original, reflected = scores[(None, "judge")], scores[(cids[0], "judge")]
    assert (original.value, reflected.value) == (3.0, 8.0)  # 20 and 100 words by the fake's rule
    assert original.scorer == "judge-model" and "rated by length" in original.detail["reason"]
    # Resumable; with the scores gone, the same requests are answered from the cache.
    assert score_judge(store, ds.id, _config(fake_oracle)).skipped == 6
    store.conn.execute("DELETE FROM scores")
    again = score_judge(store, ds.id, _config(fake_oracle))
    assert (again.requests, again.cached) == (0, 6)
    assert fake_oracle.stats()["requests"] == 6
    # The key never reaches the database.
    dump = "\n".join(store.conn.iterdump())
    assert "sk-test-secret" not in dump


def test_pairwise_in_both_orders_cancels_position_bias(fake_oracle, judged_store):
    store, ds, ids, cids = judged_store
    summary = score_judge(store, ds.id, _config(fake_oracle), pairwise=True)
    assert (summary.scored, summary.requests) == (3, 6)
    scores = {(s.candidate_id, s.metric): s for s in store.scores_for(ids[1])}
    pair, margin = scores[(cids[1], "judge_pair")], scores[(cids[1], "judge_margin")]
    # The fake judge gives the first pair one point more: 9 vs 3 one way, 8 vs 4 the other.
    assert [o["scores"] for o in pair.detail["orders"]] == [[4.0, 8.0], [9.0, 3.0]]
    assert (pair.value, pair.detail["original"], margin.value) == (8.5, 3.5, 5.0)
    assert pair.detail["both_orders"] is True
    counts = suggest(store, ds.id, "judge", metric="judge_margin", margin=2)
    assert counts["accept_reflected"] == 3
    assert store.suggestions(ds.id)[ids[0]].candidate_id == cids[0]


def _faults(fake_oracle, seed: int) -> dict:
    settings = {**DEFAULTS, "p429": 0.2, "p500": 0.2, "retry_after": 0, "seed": seed}
    fake_oracle.configure(**settings)
    return settings


def test_faults_are_retried_and_garbage_is_stored_as_a_failure(fake_oracle, judged_store):
    store, ds, ids, cids = judged_store
    config = _config(fake_oracle)
    settings = _faults(fake_oracle, seed=7)
    summary = score_judge(store, ds.id, config)
    stats = fake_oracle.stats()
    # The fake draws each request's faults from its own messages and the seed, so the order in
    # which the four in flight arrive changes nothing: every request was asked exactly until
    # its first answer, one of them all 4 times the settings allow.
    planned = {ref: attempts_to_answer(settings, ref) for ref in stats["by_ref"]}
    assert max(planned.values()) == config.max_attempts, f"seed 7 no longer plans that: {planned}"
    assert stats["by_ref"] == planned and len(planned) == 6
    assert stats["requests"] == sum(planned.values()) and stats["faults"]
    assert summary.failed == 0 and summary.scored == 6
    fake_oracle.configure(p429=0, p500=0, p_garbage=1.0)
    store.conn.execute("DELETE FROM scores")
    store.conn.execute("DELETE FROM oracle_cache")
    garbage = score_judge(store, ds.id, config)
    assert garbage.failed == 6
    failed = next(s for s in store.scores_for(ids[0]) if s.metric == "judge")
    assert failed.value is None and failed.detail["error"] == "no 1-10 score in the reply"
    assert "weather" in failed.detail["raw"]
    assert store.runs("score")[-1].counters["failed"] == 6


def test_a_request_past_its_attempts_is_stored_as_a_failure(fake_oracle, judged_store):
    store, ds, ids, cids = judged_store
    config = _config(fake_oracle)
    settings = _faults(fake_oracle, seed=1)
    summary = score_judge(store, ds.id, config)
    stats = fake_oracle.stats()
    planned = {ref: attempts_to_answer(settings, ref) for ref in stats["by_ref"]}
    unanswered = [ref for ref, n in planned.items() if n > config.max_attempts]
    assert len(unanswered) == 1, f"seed 1 no longer plans that: {planned}"
    # Asked exactly max_attempts times, never more; the others as often as they needed.
    assert stats["by_ref"] == {ref: min(n, config.max_attempts) for ref, n in planned.items()}
    assert (summary.scored, summary.failed) == (6, 1)
    [score] = [
        s for sid in ids for s in store.scores_for(sid) if s.metric == "judge" and s.value is None
    ]
    assert score.detail["status"] == "error"
    assert score.detail["error"].startswith("gave up after 4 attempts: HTTP ")


def test_cli_judge_pairwise(fake_oracle, judged_store):
    from click.testing import CliRunner

    from reflection.cli import main

    store, ds, ids, cids = judged_store
    args = ["score", "--db", str(store.path), "--metric", "judge", "--pairwise",
            "--judge-model", "judge-model", "--base-url", fake_oracle.base_url]  # fmt: skip
    result = CliRunner().invoke(main, args, env={"OPENAI_API_KEY": "sk-cli-secret"})
    assert result.exit_code == 0, result.output
    assert "judge_pair: 3 scored, 0 already done (judge-model, run" in result.output
    assert store.stats(ds.id)["scores_by_metric"]["judge_margin"] == 3
    assert "sk-cli-secret" not in "\n".join(store.conn.iterdump())
