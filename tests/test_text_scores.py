"""Text statistics: exact values on hand-made texts, and the resumable store run."""

from __future__ import annotations

import difflib
import random

import pytest

from reflection import Candidate, Sample
from reflection.scoring.runner import score_text
from reflection.scoring.text import (
    content_words,
    diff_ratio,
    pieces,
    subject_overlap,
    text_scores,
    text_stats,
    word_count,
)


@pytest.mark.parametrize(
    ("text", "words", "pieces_"),
    [
        ("", 0, []),
        ("Hello, world!", 2, ["Hello", ",", "world", "!"]),
        ("  two\n\nlines  ", 2, ["two", "lines"]),
        ("don't stop", 2, ["don", "'", "t", "stop"]),
        ("3.14 is π", 3, ["3", ".", "14", "is", "π"]),
    ],
)
def test_counts(text, words, pieces_):
    assert word_count(text) == words
    assert pieces(text) == pieces_


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("same text here", "same text here", 0.0),
        ("", "", 0.0),
        ("alpha beta", "gamma delta", 1.0),
        ("", "anything", 1.0),
        # 3 of 4 pieces kept on each side: ratio 2*3/8 = 0.75.
        ("one two three four", "one two three five", 0.25),
        ("a b", "a b c d", 1 - 2 * 2 / 6),
    ],
)
def test_diff_ratio(before, after, expected):
    assert diff_ratio(before, after) == pytest.approx(expected)


def test_diff_ratio_is_exactly_difflibs(alpaca_records):
    """cydifflib computes the ratio; it must equal the standard library's, to the last bit,
    on real answers lightly edited (words dropped, added, replaced) and on unrelated ones,
    where greedy matching blocks and a longest common subsequence part ways."""
    rng = random.Random(3)
    outputs = [r["output"] for r in alpaca_records]
    pairs = list(zip(outputs, outputs[1:], strict=False))
    for text in outputs:
        words = text.split()
        for _ in range(rng.randint(0, 1 + len(words) // 5)):
            where = rng.randrange(len(words) + 1)
            words.insert(where, rng.choice(["the", "very", ",", "however"]))
            if len(words) > 2:
                del words[rng.randrange(len(words))]
        pairs.append((text, " ".join(words)))
    for before, after in pairs:
        a, b = pieces(before), pieces(after)
        expected = 1.0 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        assert diff_ratio(before, after) == expected, (before, after)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("Write a poem about the ocean.", "Compose a sonnet about the ocean at night.", 1 / 2),
        ("Write a poem about the ocean.", "Write poems describing oceans.", 1.0),
        ("Name three rivers in Europe.", "Explain how vaccines train the immune system.", 0.0),
        ("Write something.", "Explain photosynthesis.", None),  # no content words before
    ],
)
def test_subject_overlap(before, after, expected):
    found = subject_overlap(before, after)
    assert found == (None if expected is None else pytest.approx(expected))


def test_content_words_drop_stop_words_and_stem():
    assert content_words("Please list the rivers of Europe") == {"river", "europe"}


def test_text_stats_original_has_no_comparisons():
    stats = text_stats("Say hi.", "", "Hi there, friend.")
    assert stats == {
        "words_instruction": 2, "words_input": 0, "words_output": 3,
        "tokens_instruction": 3, "tokens_output": 5,
    }  # fmt: skip


def test_text_stats_compares_a_reflection_and_uses_a_tokenizer():
    stats = text_stats(
        "Name three rivers in Europe and their lengths.", "", "The Danube ...",
        original=("Name three rivers in Europe.", "", "Rhine, Danube, Seine."),
        count_tokens=lambda text: len(text),
    )  # fmt: skip
    assert stats["tokens_output"] == len("The Danube ...")
    assert 0 < stats["diff_instruction"] < 0.5
    assert stats["diff_output"] > 0.5
    assert stats["subject_overlap"] == pytest.approx(1.0)


def test_subject_changed_flag():
    scores = text_scores(1, 2, {"subject_overlap": 0.1, "words_output": 5}, run_id=9)
    flagged = {s.metric: s for s in scores}
    assert flagged["subject_overlap"].detail == {"subject_changed": True}
    assert flagged["words_output"].detail == {}
    assert all(s.run_id == 9 and s.candidate_id == 2 and s.scorer == "text" for s in scores)


def test_score_text_in_the_store_is_resumable(store):
    ds = store.ensure_dataset("d")
    store.add_samples(
        ds.id, [Sample("Name a river.", output="The Nile."), Sample("Say hi.", output="Hi.")]
    )
    first, second = store.sample_ids(ds.id)
    (cid,) = store.add_candidates([Candidate(first, "instruction", instruction="Name a long river in Africa.", output="The Nile, 6,650 km.")])  # fmt: skip
    store.add_candidates([Candidate(second, "response", status="failed", error="timeout")])
    summary = score_text(store, ds.id)
    assert (summary.scored, summary.skipped) == (3, 0)  # two originals and one usable candidate
    scores = {(s.candidate_id, s.metric): s.value for s in store.scores_for(first)}
    assert scores[(None, "words_output")] == 2
    assert (None, "diff_ratio") not in scores
    assert scores[(cid, "words_instruction")] == 6
    assert 0 < scores[(cid, "diff_ratio")] < 1
    again = score_text(store, ds.id)
    assert (again.scored, again.skipped) == (0, 3)
    assert store.runs("score")[-1].counters == {"scored": 0, "skipped": 3, "scores": 0, "flags": {}}


def test_scored_versions_are_known_a_chunk_at_a_time(store):
    """What is done is asked of the store per chunk of samples, as the chunk is read: across
    chunk boundaries each version is known as done exactly when it was scored, and only the
    chunk being read is held (a set of the whole dataset's grew with it)."""
    from reflection.scoring.versions import ScoredVersions, dataset_versions

    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(f"Task {i}.", output=f"Answer {i}.") for i in range(11)])
    ids = store.sample_ids(ds.id)
    store.add_candidates([Candidate(sid, "response", output=f"Better {sid}.") for sid in ids])
    assert score_text(store, ds.id, limit=5).scored == 10  # the first 5 samples, both versions
    done = ScoredVersions(store, "words_output", "text")
    seen, held = {}, []
    for _sample, versions in dataset_versions(store, ds.id, chunk=4, done=done):
        held.append(len(done._keys))
        for version in versions:
            seen[version.key] = version.key in done
    assert len(seen) == 22
    assert {key for key, known in seen.items() if known} == {
        key for key in seen if key[0] in ids[:5]
    }
    assert max(held) == 8  # one chunk of 4 samples, two versions each, at most
    again = score_text(store, ds.id)
    assert (again.scored, again.skipped) == (12, 10)
