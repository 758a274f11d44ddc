"""Word-level diffs and their escaped HTML; the C++ engine against the pure-Python one."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import ALPACA_PATH

from reflection.diff import (
    COARSE_REASON,
    DELETE,
    DIFF_TIME_LIMIT_S,
    EQUAL,
    INSERT,
    WordDiff,
    _codes,
    block_html,
    diff_stats,
    diff_words,
    inline_html,
    reference_word_diff,
    side_html,
    tokenize,
    word_diff,
)

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"
# Far past anything these tests need, so only an input's shape decides coarse or not.
NO_RUSH_S = 30.0
# Smaller than any call can take: the word pass always counts as cut short.
NO_TIME_S = 1e-9


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("hello", ["hello"]),
        ("Hello, world!", ["Hello", ",", " ", "world", "!"]),
        ("don't re-run", ["don't", " ", "re-run"]),
        ("a  \n\tb", ["a", "  \n\t", "b"]),
        ("x<y>", ["x", "<", "y", ">"]),
        ("naïve café 42", ["naïve", " ", "café", " ", "42"]),
        ("snake_case", ["snake_case"]),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens
    assert "".join(tokenize(text)) == text


@pytest.mark.parametrize(
    ("old", "new", "ops"),
    [
        ("", "", []),
        ("same text", "same text", [(EQUAL, "same text")]),
        ("", "new words", [(INSERT, "new words")]),
        ("old words", "", [(DELETE, "old words")]),
        # whole words change, never parts of words
        ("Please rerun it", "Please re-run it", [(EQUAL, "Please "), (DELETE, "rerun"), (INSERT, "re-run"), (EQUAL, " it")]),
        ("the cat sat", "the dog sat", [(EQUAL, "the "), (DELETE, "cat"), (INSERT, "dog"), (EQUAL, " sat")]),
        ("one two", "one two three", [(EQUAL, "one two"), (INSERT, " three")]),
        ("a b c", "a c", [(EQUAL, "a "), (DELETE, "b "), (EQUAL, "c")]),
        ("testing", "tested", [(DELETE, "testing"), (INSERT, "tested")]),
    ],
)  # fmt: skip
def test_word_diff(old, new, ops):
    assert word_diff(old, new) == ops


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("The quick brown fox jumps over the lazy dog.", "A quick red fox leapt over the dog!"),
        ("line one\nline two\n", "line one\nline 2\nline three\n"),
        ("x" * 50 + " y", "y " + "x" * 50),
        ("emoji 😀 here", "emoji 🎉 there"),
    ],
)
def test_word_diff_rebuilds_both_texts(old, new):
    ops = word_diff(old, new)
    assert "".join(t for op, t in ops if op != INSERT) == old
    assert "".join(t for op, t in ops if op != DELETE) == new


@pytest.mark.parametrize("words", [60_000, 80_000])
def test_word_diff_handles_many_distinct_tokens(words):
    # Past the 6,400 codes of the BMP's private use area, and (80,000) past plane 15's too.
    old = " ".join(f"w{i}" for i in range(words))
    last = f"w{words - 1}"
    new = old.replace(last, "changed")
    # What is tested is the codes, not the time: tokenizing 120,000 tokens takes ~10 ms, so
    # under the page's 10 ms budget a busy CI worker fell back to the coarse diff.
    result = diff_words(old, new, time_limit_s=60.0)
    assert not result.coarse
    assert result.ops == [(EQUAL, old[: -len(last)]), (DELETE, last), (INSERT, "changed")]


_ALL_CODES = list(_codes(200_000))


@pytest.mark.parametrize(
    ("index", "code"),
    [
        (0, 0xE000),
        (6399, 0xF8FF),
        (6400, 0xF0000),  # plane 15's private use area
        (71933, 0xFFFFD),
        (71934, 0x100000),  # plane 16's
        (137467, 0x10FFFD),
        (137468, 0x100),  # then any other code point, surrogates skipped
        (137468 + 0xD7FF - 0x100, 0xD7FF),
        (137468 + 0xD800 - 0x100, 0xF900),
    ],
)
def test_token_codes(index, code):
    assert _ALL_CODES[index] == chr(code)


def test_token_codes_are_distinct_and_never_surrogates():
    assert len(set(_ALL_CODES)) == len(_ALL_CODES)
    assert not [c for c in _ALL_CODES if 0xD800 <= ord(c) < 0xE000]


def _related(text: str) -> str:
    """A light, deterministic edit: some tokens dropped, some upper-cased, some words added."""
    out = []
    for i, token in enumerate(tokenize(text)):
        if i % 13 == 5:
            continue
        out.append(("really " if i % 19 == 7 else "") + (token.upper() if i % 17 == 3 else token))
    return "".join(out)


_PROSE = (
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. "
    "It happens in the chloroplasts of plant cells, mostly in the leaves.\n"
)
_OTHER = "Rome was not built in a day; its roads, laws and aqueducts took centuries.\n"


def _drawn(seed: int, choices: str, sep: str, n: int = 2000) -> str:
    rng = random.Random(seed)
    return sep.join(rng.choice(choices) for _ in range(n))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(_PROSE * 25, _related(_PROSE * 25), id="related"),
        pytest.param(_PROSE * 25, _OTHER * 50, id="unrelated"),
        pytest.param("a," * 2000, "b." * 2000, id="no token in common"),
        pytest.param(_drawn(1, "ab", ","), _drawn(2, "ab", ","), id="few tokens, long path"),
        pytest.param("x" * 4000, "x" * 1999 + "y" + "x" * 2000, id="one long line, no spaces"),
        pytest.param(_drawn(3, "abc", "\n"), _drawn(4, "abc", "\n"), id="many short lines"),
        pytest.param(_drawn(5, "abc", ". "), _drawn(6, "abc", ". "), id="many short sentences"),
    ],
)
@pytest.mark.parametrize("time_limit_s", [NO_TIME_S, DIFF_TIME_LIMIT_S, NO_RUSH_S])
def test_diff_words_always_rebuilds_both_texts(old, new, time_limit_s):
    # Whether the word pass finishes in time depends on the machine; what it returns never
    # may: a diff of exactly these two texts, merged, in whole words or whole sentences.
    result = diff_words(old, new, time_limit_s=time_limit_s)
    assert "".join(t for op, t in result.ops if op != INSERT) == old
    assert "".join(t for op, t in result.ops if op != DELETE) == new
    assert all(t for _, t in result.ops)
    assert all(a[0] != b[0] for a, b in zip(result.ops, result.ops[1:], strict=False))
    assert result.reason == (COARSE_REASON if result.coarse else "")
    if time_limit_s == NO_TIME_S:
        assert result.coarse


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("the cat sat", "the dog sat", WordDiff([(DELETE, "the cat sat"), (INSERT, "the dog sat")], coarse=True, reason=COARSE_REASON)),
        ("", "", WordDiff([])),
        ("same", "same", WordDiff([(EQUAL, "same")])),
        # one changed sentence among equal ones: marked whole, and said so
        ("One fine day. The cat sat here. The end.", "One fine day. A dog ran there. The end.",
         WordDiff([(EQUAL, "One fine day. "), (DELETE, "The cat sat here. "), (INSERT, "A dog ran there. "), (EQUAL, "The end.")], coarse=True, reason=COARSE_REASON)),
        ("first line\nold words\nlast line", "first line\nnew words\nlast line",
         WordDiff([(EQUAL, "first line\n"), (DELETE, "old words\n"), (INSERT, "new words\n"), (EQUAL, "last line")], coarse=True, reason=COARSE_REASON)),
    ],
)  # fmt: skip
def test_coarse_fallback_marks_whole_sentences(old, new, expected):
    # Identical texts never need the word pass; the others are cut short at once.
    assert diff_words(old, new, time_limit_s=NO_TIME_S) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("the cat sat", "the dog sat", WordDiff([(EQUAL, "the "), (DELETE, "cat"), (INSERT, "dog"), (EQUAL, " sat")])),
        ("a b c", "a c", WordDiff([(EQUAL, "a "), (DELETE, "b "), (EQUAL, "c")])),
    ],
)  # fmt: skip
def test_diff_words_in_time_is_exact(old, new, expected):
    assert diff_words(old, new, time_limit_s=NO_RUSH_S) == expected


@pytest.mark.parametrize("time_limit_s", [0, -1.0])
def test_diff_words_needs_a_positive_time_limit(time_limit_s):
    with pytest.raises(ValueError, match="time_limit_s must be positive"):
        diff_words("a", "b", time_limit_s=time_limit_s)


def _real_pairs() -> list[tuple[str, str, str]]:
    """Answer pairs: the demo's originals against their reflections and against light edits;
    with the shared Alpaca file, every 97th output against an edit and against its neighbour."""
    samples = [json.loads(line) for line in (DEMO / "samples.jsonl").open(encoding="utf-8")]
    pairs = []
    for line in (DEMO / "candidates.jsonl").open(encoding="utf-8"):
        candidate = json.loads(line)
        if candidate["kind"] == "response":
            original = samples[candidate["position"]]["output"]
            pairs.append((f"demo {candidate['position']}", original, candidate["output"]))
            pairs.append((f"demo {candidate['position']} edited", original, _related(original)))
    if ALPACA_PATH.exists():
        outputs = [r["output"] for r in json.loads(ALPACA_PATH.read_text(encoding="utf-8"))]
        for i in range(0, len(outputs), 97):
            pairs.append((f"alpaca {i} edited", outputs[i], _related(outputs[i])))
            pairs.append((f"alpaca {i} vs {i - 1}", outputs[i], outputs[i - 1]))
    return pairs


def test_same_word_diffs_as_the_python_engine():
    # The previous engine with its own 2 s limit, the new one with as long: same algorithm,
    # same cleanup, so the same ops wherever the old one finished (none of these is near 2 s).
    # Under 450 distinct tokens the old codes (from U+0100) are all letters, so its semantic
    # tie-breaks were uniform, as the new private-use codes make them always; past that, the
    # old engine's ties depended on which token got which code (and on the C locale).
    pairs = _real_pairs()
    assert max(len(set(tokenize(old)) | set(tokenize(new))) for _, old, new in pairs) < 450
    differ = [
        name
        for name, old, new in pairs
        if diff_words(old, new, time_limit_s=2.0).ops != reference_word_diff(old, new)
    ]
    assert differ == []
    assert len(pairs) >= 128


def test_default_limit_gives_the_exact_diff_or_says_it_did_not():
    for name, old, new in _real_pairs():
        result = diff_words(old, new)
        if not result.coarse:
            assert result.ops == diff_words(old, new, time_limit_s=2.0).ops, name


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([], ""),
        ([(EQUAL, "a "), (DELETE, "b"), (INSERT, "c")], 'a <del class="rs-del">b</del><ins class="rs-ins">c</ins>'),
        ([(EQUAL, "<script>alert(1)</script>")], "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ([(INSERT, '<img src=x onerror="alert(1)">')], '<ins class="rs-ins">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</ins>'),
        ([(DELETE, "a & b's")], '<del class="rs-del">a &amp; b&#x27;s</del>'),
    ],
)  # fmt: skip
def test_inline_html(ops, expected):
    assert inline_html(ops) == expected


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        ("old", 'keep <del class="rs-del">&lt;old&gt;</del> end'),
        ("new", 'keep <ins class="rs-ins">new&amp;</ins> end'),
    ],
)
def test_side_html(side, expected):
    ops = [(EQUAL, "keep "), (DELETE, "<old>"), (INSERT, "new&"), (EQUAL, " end")]
    assert side_html(ops, side) == expected


def test_side_html_rejects_unknown_side():
    with pytest.raises(ValueError, match="'both'"):
        side_html([], "both")


@pytest.mark.parametrize(
    ("old", "new", "stats"),
    [
        ("the cat sat", "the dog sat down", {"equal": 2, "deleted": 1, "inserted": 2}),
        ("same, same.", "same, same.", {"equal": 2, "deleted": 0, "inserted": 0}),
        ("", "a b c", {"equal": 0, "deleted": 0, "inserted": 3}),
    ],
)
def test_diff_stats(old, new, stats):
    assert diff_stats(word_diff(old, new)) == stats


@pytest.mark.parametrize(
    ("body", "label", "expected"),
    [
        ("x", "", '<div class="rs-diff">x</div>'),
        ("", "", '<div class="rs-diff"><span class="rs-empty">(empty)</span></div>'),
        ("x", "<b>Output</b>", '<div class="rs-label">&lt;b&gt;Output&lt;/b&gt;</div><div class="rs-diff">x</div>'),
    ],
)  # fmt: skip
def test_block_html(body, label, expected):
    assert block_html(body, label=label) == expected


def test_hostile_text_never_yields_markup():
    hostile = '<script>alert("x")</script> <img src=x onerror=alert(1)> [a](javascript:alert(1))'
    coarse = diff_words(hostile, "safe. " + hostile, time_limit_s=NO_TIME_S)
    assert coarse.coarse
    for ops in (
        word_diff("", hostile),
        word_diff(hostile, "safe"),
        word_diff(hostile, hostile),
        coarse.ops,
    ):
        rendered = inline_html(ops) + side_html(ops, "old") + side_html(ops, "new")
        assert "<script" not in rendered
        assert "<img" not in rendered
        assert "&lt;script&gt;" in rendered
