"""Word-level diffs and their escaped HTML."""

from __future__ import annotations

import pytest

from reflection.diff import (
    DELETE,
    EQUAL,
    INSERT,
    block_html,
    diff_stats,
    inline_html,
    side_html,
    tokenize,
    word_diff,
)


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


def test_word_diff_handles_many_distinct_tokens():
    # More distinct tokens than the surrogate gap leaves below it: codes must skip it.
    old = " ".join(f"w{i}" for i in range(60_000))
    new = old.replace("w59999", "changed")
    ops = word_diff(old, new)
    assert ops[-2:] == [(DELETE, "w59999"), (INSERT, "changed")]


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
    for ops in (word_diff("", hostile), word_diff(hostile, "safe"), word_diff(hostile, hostile)):
        rendered = inline_html(ops) + side_html(ops, "old") + side_html(ops, "new")
        assert "<script" not in rendered
        assert "<img" not in rendered
        assert "&lt;script&gt;" in rendered
