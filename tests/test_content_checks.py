"""Content checks (reflection/scoring/checks.py): table-driven on written outputs, then on real
replies of the local SmolLM2 oracle (tests/data/oracle_replies/smollm2_reflections.jsonl,
recorded by record_reflections.py and labelled by hand below), then against the 3,111 real
Alpaca answers, which must almost never be flagged."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reflection.records import Sample, Score
from reflection.reflect.oracle import Reply
from reflection.reflect.plan import Planner
from reflection.reflect.pricing import PriceTable
from reflection.reflect.prompts import DEFAULT_PROMPTS
from reflection.reflect.settings import OracleConfig
from reflection.scoring import checks
from reflection.scoring.checks import (
    _META_FAST,
    _META_RE,
    check_scores,
    content_checks,
    meta_talk,
    relevance_flags,
    repetition,
    version_flags,
)

RECORDED = Path(__file__).parent / "data" / "oracle_replies" / "smollm2_reflections.jsonl"
LOOP = "The cat sat on the mat and looked at the door. " * 12
ESSAY = (
    "Photosynthesis turns light into chemical energy. Chlorophyll in the chloroplasts absorbs"
    " red and blue light. Water is split, releasing oxygen, and the energy drives the Calvin"
    " cycle, which fixes carbon dioxide into sugars. Plants use those sugars to grow."
)

# (id, output, original output, status, expected flags)
CASES = [
    ("a fluent answer", ESSAY, ESSAY[:150], "ok", set()),
    (
        "an answer that states its result",
        "The answer is 42, since 6 times 7 is 42.",
        "42",
        "ok",
        set(),
    ),  # fmt: skip
    ("empty", "", ESSAY, "ok", {"empty"}),
    ("empty because cut off", "  \n", ESSAY, "truncated", {"empty", "truncated"}),
    ("cut off mid-answer", ESSAY, ESSAY, "truncated", {"truncated"}),
    (
        "announces and stops",
        "The original answer lacks detail. The better Answer would be:",
        ESSAY,
        "ok",
        {"meta_talk"},
    ),  # fmt: skip
    (
        "a critique instead of an answer",
        "Your answer is correct and has all the necessary details. The response could mention"
        " the Calvin cycle. Photosynthesis is important.",
        ESSAY,
        "ok",
        {"meta_talk"},
    ),
    (
        "talk about the parts",
        "The first part focuses on light. The second part focuses on the third part.",
        ESSAY,
        "ok",
        {"meta_talk"},
    ),  # fmt: skip
    (
        "a report on its own edits",
        "I have added an example and revised the second paragraph. In this revised version the"
        " steps are clearer.",
        ESSAY,
        "ok",
        {"meta_talk"},
    ),
    ("a refusal", "I'm sorry, but I cannot help with that.", ESSAY, "ok", {"meta_talk"}),
    ("a loop", LOOP, LOOP[:200], "ok", {"repetitive"}),
    ("far too short", "Plants.", ESSAY, "ok", {"length"}),
    ("longer than a short original is fine", ESSAY, "Light to sugar.", "ok", set()),
]


@pytest.mark.parametrize(
    ("case", "output", "original", "status", "flags"), CASES, ids=[c[0] for c in CASES]
)
def test_content_checks(case, output, original, status, flags):
    checks = content_checks(output, original_output=original, status=status)
    assert set(checks.flags) == flags, checks.flags
    assert checks.values["content_flags"] == len(flags)
    assert all(reason for reason in checks.flags.values())


def test_reasons_say_what_was_seen():
    why = content_checks("The original answer lacks detail. The better Answer would be:").flags
    assert why["meta_talk"] == (
        "ends by announcing an answer that does not follow: “The better Answer would be:”"
    )
    assert content_checks("Plants.", original_output=ESSAY).flags["length"] == (
        "1 word, 3% of the original's 39 (flagged below 20%)"
    )
    assert content_checks(LOOP).flags["repetitive"].startswith("91% of its word 4-grams repeat")


def test_numbers_of_each_check():
    assert meta_talk("") == (0.0, None)
    assert meta_talk(ESSAY)[0] == 0.0
    assert repetition("one two three") == 0.0  # too short to say
    assert repetition(LOOP) == pytest.approx(1 - 11 / 129)  # 11 distinct of 129
    checks = content_checks(ESSAY, original_output=ESSAY[:150])
    assert checks.values["length_ratio"] == pytest.approx(39 / 22)
    assert "length_ratio" not in content_checks(ESSAY).values  # originals have no ratio


def test_flags_travel_in_the_scores_detail():
    checks = content_checks("", original_output=ESSAY, status="truncated")
    scores = check_scores(7, 3, checks, run_id=1, scorer="text")
    carrier = next(s for s in scores if s.metric == "content_flags")
    assert carrier.value == 2 and carrier.candidate_id == 3
    assert version_flags(scores) == checks.flags
    assert relevance_flags(0.149999, 0.15) == {
        "off_topic": "the answer's similarity to the instruction is 0.149999 < 0.15"
    }
    assert relevance_flags(0.2, 0.15) == {} and relevance_flags(None) == {}


def test_a_configured_judge_counts_where_it_rated():
    low = Score(1, "judge", 2.5, "judge:gpt-4o-mini", 3)
    assert version_flags([low]) == {
        "judge_low": "the judge (judge:gpt-4o-mini) rated it 2.5 (flagged at 3 or below)"
    }
    assert version_flags([Score(1, "judge", 7.0, "judge:gpt-4o-mini", 3)]) == {}


# --------------------------------------------------------------------------- recorded replies

# Each recorded reply, by (Alpaca record, reply token limit), as a person reads it: the flags
# its text deserves. 54 replies were recorded (records 0-39 at --max-tokens 512, a few at
# 2048, the README's old default); these 16 cover every kind. Meta-talk patterns were written
# from replies 0-15, then checked on later ones as they came: 24, 27, 42 and 53 were missed
# at first (patterns for the reviewer's voice followed); 33, 37 and 49 are still missed.
LABELS: dict[tuple[int, int], set[str]] = {
    (0, 512): {"meta_talk"},  # "I have made sure to include detail... I rewrote my answer"
    (1, 512): set(),  # a summary of the article
    (3, 2048): {"empty", "truncated", "repetitive"},  # the critique loops to 2,048 tokens
    (4, 512): {"meta_talk"},  # "The answer contains multiple sentences with a mix of jargon"
    (5, 512): {"empty", "truncated"},  # cut off in a long critique
    (9, 512): set(),  # operant conditioning, explained
    (15, 512): set(),  # a Bloom filter (loosely), explained
    (19, 512): {"meta_talk"},  # "The answer is not as detailed as you requested"
    (21, 512): {"truncated"},  # a real list of answers, cut off
    (26, 512): {"meta_talk", "truncated"},  # "This critique highlights that the answer..."
    (28, 512): {"empty", "truncated", "repetitive"},  # the critique loops to 512 tokens
    (31, 512): {"meta_talk"},  # ends "Here is the full edit:" (the "would be:")
    (32, 512): set(),  # a policy on air pollution
    (37, 512): {"meta_talk"},  # "This answer fails to address the question" (missed, below)
    (39, 512): set(),  # chatter about "your skills": off topic, which relevance catches
    (52, 2048): {"length"},  # 36 words where 800-900 were asked (the original has 308)
}
# What the text checks miss: a person reads meta-talk here, but only 2 of its 7 sentences say
# so in words the narrow patterns know. Kept to show the detector's limit, not hidden.
KNOWN_MISSES: dict[tuple[int, int], set[str]] = {(37, 512): {"meta_talk"}}
# Off topic: the answer's MiniLM similarity to its instruction is below RELEVANCE_THRESHOLD
# (19: 0.015, 31: 0.033, 39: 0.046; the fluent ones 0.19 to 0.83). The text checks cannot
# see this; the relevance score does (test_degenerate_e2e.py).
OFF_TOPIC = {(19, 512), (31, 512), (39, 512)}


def recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text(encoding="utf-8").splitlines()]


def as_candidate(line: dict):
    """The candidate `reflection reflect` stores for a recorded reply (the real Planner)."""
    config = OracleConfig(model="smollm2-135m-instruct", base_url="http://x/v1", api_key="k",
                          dialect="llama.cpp", max_tokens=line["max_tokens"])  # fmt: skip
    planner = Planner(config, DEFAULT_PROMPTS, PriceTable())
    sample = Sample(line["instruction"], line["input"], line["output"], id=1)
    job = planner.first_jobs([sample], "response", False)[0]
    status = "truncated" if line["finish_reason"] == "length" else "ok"
    reply = Reply(status=status, text=line["reply"], finish_reason=line["finish_reason"])
    return sample, planner.candidate(job, reply, None)


def key(line: dict) -> tuple[int, int]:
    return (line["record"], line["max_tokens"])


@pytest.mark.parametrize("line", recorded(), ids=lambda line: "record {}@{}".format(*key(line)))
def test_recorded_replies_are_flagged_as_read(line):
    sample, candidate = as_candidate(line)
    checks = content_checks(
        candidate.output, original_output=sample.output, status=candidate.status,
        reply=candidate.raw,
    )  # fmt: skip
    expected = LABELS[key(line)] - KNOWN_MISSES.get(key(line), set())
    assert set(checks.flags) == expected, (candidate.output, checks.flags)


def test_the_recording_has_every_kind_of_reply():
    assert sorted(LABELS) == sorted(key(line) for line in recorded())
    kinds = set().union(*LABELS.values()) | {"fluent" for v in LABELS.values() if not v}
    assert {"empty", "truncated", "meta_talk", "repetitive", "fluent"} <= kinds


# --------------------------------------------------------------------------- real answers


def test_real_alpaca_answers_are_almost_never_flagged(alpaca_records):
    flagged = {}
    for number, record in enumerate(alpaca_records):
        found = content_checks(record["output"]).flags
        if found:
            flagged[number] = found
    # Two loops that are the answer's point (a musical sequence, a metaphor repeated on
    # purpose); song lyrics with choruses stay below the repetition threshold.
    assert len(flagged) <= 3, flagged
    assert not any("meta_talk" in found for found in flagged.values())


# --------------------------------------------------------------------------- the RE2 prefilter

# Words of the meta-talk patterns, near misses, and the characters where RE2's ASCII classes
# and Python's Unicode ones differ: no-break and other Unicode spaces, non-ASCII letters beside
# a word, the long s and the Kelvin sign (which fold to s and k), CJK without spaces.
PIECES = (  # noqa: SIM905 (a list of 70 words reads better as text)
    "answer response reply Answer RESPONSE your my you I we the this original previous better"
    " improved revised new here's here is was seems correct concise lacks provides added made"
    " sure rewrote requested asked for critique feedback prompt instruction question vague to"
    " glad I'm I'll will write provide a follow-up version would be possible sentence should"
    " [critique] [Better answer] [cite:1] part section first focuses très bien réponse 答案"
    " ſure \u212aind dog answers responses"
).split()
GLUE = [
    " ",
    " ",
    " ",
    "\xa0",
    "\u2003",
    "\t",
    "\x1c",
    "\x85",
    "\u3000",
    "",
    "é",
    "ß",
    "-",
    "'",
    ".",
]


def test_the_re2_prefilter_never_misses_a_match_of_re():
    """RE2 scans the text first and `re` confirms its hits, so RE2 must match wherever `re`
    does: on 20,000 seeded strings built from the patterns' own words glued by the characters
    where the engines' classes differ, and on every real and recorded text."""
    rng = random.Random(14)
    matched = 0
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) + rng.choice(GLUE) for _ in range(rng.randint(2, 9)))
        if _META_RE.search(text):
            matched += 1
            assert _META_FAST.search(text), text
    assert matched > 1_000  # the strings reach the patterns often enough to mean something


def test_meta_talk_with_the_prefilter_equals_re_alone(alpaca_records, monkeypatch):
    texts = [r["output"] for r in alpaca_records] + [c[1] for c in CASES]
    texts += [line[field] for line in recorded() for field in ("reply", "output")]
    texts += [t.replace(" ", "\xa0") for t in texts]
    ours = [meta_talk(t) for t in texts]

    class Everything:  # a prefilter that lets every text and sentence through to `re`
        def search(self, text: str) -> bool:
            return True

    monkeypatch.setattr(checks, "_META_FAST", Everything())
    assert ours == [meta_talk(t) for t in texts]
    assert sum(share > 0 for share, _ in ours) >= 20  # meta talk is in the corpus
