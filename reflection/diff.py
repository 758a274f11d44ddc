"""Word-level diffs, and their HTML with every text fragment escaped.

Character diffs split words (`re[-]run`) even after semantic cleanup. So the texts are cut
into tokens (words, whitespace runs, single punctuation marks), each distinct token is mapped
to one character, diff-match-patch diffs those strings, and the result is mapped back.

The engine is fast-diff-match-patch, Google's C++ diff-match-patch: the same algorithm and
cleanup as the pure-Python port, 10-40 times faster. Myers' diff is still O(N·D), so two long
unrelated texts can take longer than a page should wait: the word pass gets a time limit, and
when it may have been cut short the texts are diffed again sentence by sentence (a sentence or a
line is then the smallest unit marked), and the result says so (`WordDiff.coarse`).

Token codes come from the Private Use Areas. The semantic cleanup scores a boundary by whether
the characters beside it are letters or spaces: for private-use codes that answer is "neither",
the same in Python and in C++ under every locale, so ties break the same way everywhere (codes
that are letters would be judged by the C library's locale, and differ under `LC_ALL=C`).

Dataset and oracle text is untrusted: every fragment passes through `html.escape` before it
becomes part of the HTML, and the markup around it is fixed.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import fast_diff_match_patch
from diff_match_patch import diff_match_patch

DELETE, EQUAL, INSERT = -1, 0, 1
Op = tuple[int, str]

# A word (letters, digits, underscore, with inner apostrophes or hyphens), a whitespace run,
# or any other single character (punctuation, symbols).
_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|\s+|[^\w\s]", re.UNICODE)
# The coarse pass's unit: text up to a run of sentence marks (with the spaces and the newline
# after it), up to a newline, or to the end.
_SENTENCE = re.compile(r"[^\n.!?]*(?:[.!?]+[ \t]*\n?|\n)|[^\n.!?]+")
# CPU seconds for one diff (process time, the clock the C++ deadline reads): the word pass,
# tokenizing included, may use three quarters (and the C++ a quarter at least, however long
# tokenizing took); if it does not finish, the sentence pass gets the rest (an eighth at
# least; its units are few unless the text is pathological). Most real answer pairs need
# ~1 ms; two unrelated 4,000-character texts ~20 ms, so they fall back, and mapping the
# result back adds ~1 ms (bench/bench_diff.py).
DIFF_TIME_LIMIT_S = 0.010
COARSE_REASON = (
    "The texts differ too much to compare word by word in time, "
    "so whole changed sentences and lines are marked."
)
_OPS = {"-": DELETE, "=": EQUAL, "+": INSERT}
# Private Use Areas first (see the module docstring); past them, any other non-surrogate code.
_WIDE = fast_diff_match_patch.CHAR_WIDTH >= 4
_CODE_RANGES = (
    [(0xE000, 0xF900)]
    + ([(0xF0000, 0xFFFFE), (0x100000, 0x10FFFE)] if _WIDE else [])
    + [(0x100, 0xD800), (0xF900, 0x10000)]
    + ([(0x10000, 0xF0000)] if _WIDE else [])
)


@dataclass(frozen=True)
class WordDiff:
    """A diff and how it was made: `coarse` when sentences, not words, are its smallest unit."""

    ops: list[Op] = field(default_factory=list)
    coarse: bool = False
    reason: str = ""


def tokenize(text: str) -> list[str]:
    """Words, whitespace runs and single punctuation marks; joined they give back `text`."""
    return _TOKEN.findall(text)


def _codes(count: int) -> Iterator[str]:
    """The first `count` token codes, in order."""
    for start, stop in _CODE_RANGES:
        taken = min(count, stop - start)
        yield from map(chr, range(start, start + taken))
        count -= taken
        if not count:
            return
    raise ValueError("too many distinct tokens to diff")


def _diff_units(
    old: list[str], new: list[str], deadline: float, least_s: float
) -> tuple[list[Op], bool]:
    """Diff two unit sequences by `deadline` (process CPU time), or in `least_s` if later; the
    flag is False when the time limit may have cut the diff short."""
    distinct = dict.fromkeys(old + new)
    codes = dict(zip(distinct, _codes(len(distinct)), strict=True))
    old_codes = "".join(map(codes.__getitem__, old))
    new_codes = "".join(map(codes.__getitem__, new))
    # The C++ deadline counts this process's CPU time (clock(), in whole microseconds), so
    # measure the same clock: under the limit, the deadline cannot have fired and the diff is
    # the exact one. Other threads' CPU time counts too, so a busy process falls back sooner.
    start = time.process_time()
    limit = max(deadline - start, least_s)
    counts = fast_diff_match_patch.diff(
        old_codes, new_codes, timelimit=limit, checklines=False, cleanup="Semantic"
    )
    finished = time.process_time() - start < limit - 1e-5
    ops: list[Op] = []
    i = j = 0
    for op, n in counts:
        if op == "+":
            ops.append((INSERT, "".join(new[j : j + n])))
            j += n
        else:
            ops.append((_OPS[op], "".join(old[i : i + n])))
            i += n
            if op == "=":
                j += n
    return _merge(ops), finished


def diff_words(old: str, new: str, *, time_limit_s: float | None = None) -> WordDiff:
    """The word-level diff of two texts, or a sentence-level one if words take too long.

    `time_limit_s` defaults to DIFF_TIME_LIMIT_S, read at call time.
    """
    if time_limit_s is None:
        time_limit_s = DIFF_TIME_LIMIT_S
    if time_limit_s <= 0:
        # diff-match-patch reads 0 as "no limit" and then skips its half-match speed-up,
        # which changes the diffs; a limit is always wanted here.
        raise ValueError(f"time_limit_s must be positive, not {time_limit_s!r}")
    if old == new:
        return WordDiff([(EQUAL, old)] if old else [])
    start = time.process_time()
    old_tokens, new_tokens = tokenize(old), tokenize(new)
    ops, finished = _diff_units(
        old_tokens, new_tokens, start + 0.75 * time_limit_s, time_limit_s / 4
    )
    if finished:
        return WordDiff(ops)
    old_units, new_units = _SENTENCE.findall(old), _SENTENCE.findall(new)
    ops, _ = _diff_units(old_units, new_units, start + time_limit_s, time_limit_s / 8)
    return WordDiff(ops, coarse=True, reason=COARSE_REASON)


def word_diff(old: str, new: str) -> list[Op]:
    """The word-level diff of two texts: (op, text) pairs, op one of DELETE, EQUAL, INSERT."""
    return diff_words(old, new).ops


def _legacy_code(index: int) -> str:
    point = 0x100 + index
    if point >= 0xD800:
        point += 0xE000 - 0xD800
    return chr(point)


def reference_word_diff(old: str, new: str, *, timeout_s: float = 2.0) -> list[Op]:
    """The previous engine, pure-Python diff-match-patch: the baseline for tests and bench."""
    if old == new:
        return [(EQUAL, old)] if old else []
    codes: dict[str, str] = {}
    tokens: list[str] = []

    def encode(text: str) -> str:
        out = []
        for token in tokenize(text):
            if token not in codes:
                codes[token] = _legacy_code(len(tokens))
                tokens.append(token)
            out.append(codes[token])
        return "".join(out)

    old_codes, new_codes = encode(old), encode(new)
    dmp = diff_match_patch()
    dmp.Diff_Timeout = timeout_s
    diffs = dmp.diff_main(old_codes, new_codes, False)
    dmp.diff_cleanupSemantic(diffs)
    decode = {code: token for token, code in codes.items()}
    return _merge([(op, "".join(decode[c] for c in text)) for op, text in diffs])


def _merge(ops: Sequence[Op]) -> list[Op]:
    """Join neighbours with the same op and drop empty pieces."""
    merged: list[Op] = []
    for op, text in ops:
        if not text:
            continue
        if merged and merged[-1][0] == op:
            merged[-1] = (op, merged[-1][1] + text)
        else:
            merged.append((op, text))
    return merged


def diff_stats(ops: Sequence[Op]) -> dict[str, int]:
    """Words kept, deleted and inserted (whitespace and punctuation do not count)."""
    counts = {"equal": 0, "deleted": 0, "inserted": 0}
    names = {EQUAL: "equal", DELETE: "deleted", INSERT: "inserted"}
    for op, text in ops:
        counts[names[op]] += sum(1 for t in tokenize(text) if t[0].isalnum() or t[0] == "_")
    return counts


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def inline_html(ops: Sequence[Op]) -> str:
    """One text with deletions in `<del>` and insertions in `<ins>`, all text escaped."""
    parts = []
    for op, text in ops:
        if op == DELETE:
            parts.append(f'<del class="rs-del">{_escape(text)}</del>')
        elif op == INSERT:
            parts.append(f'<ins class="rs-ins">{_escape(text)}</ins>')
        else:
            parts.append(_escape(text))
    return "".join(parts)


def side_html(ops: Sequence[Op], side: str) -> str:
    """One side of a side-by-side diff: "old" marks deletions, "new" marks insertions."""
    if side not in ("old", "new"):
        raise ValueError(f"side must be 'old' or 'new', not {side!r}")
    keep, tag = (DELETE, "del") if side == "old" else (INSERT, "ins")
    parts = []
    for op, text in ops:
        if op == EQUAL:
            parts.append(_escape(text))
        elif op == keep:
            parts.append(f'<{tag} class="rs-{tag}">{_escape(text)}</{tag}>')
    return "".join(parts)


_MD_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# In the markdown view, formatting stays but nothing can become a link, image or HTML.
_MD_INERT = frozenset("\\[]<>$")


def escape_markdown(text: str) -> str:
    """Plain text for a markdown context: every ASCII punctuation mark backslash-escaped."""
    return "".join("\\" + ch if ch in _MD_PUNCTUATION else ch for ch in text)


def safe_markdown(text: str) -> str:
    """Markdown with links, images, autolinks, raw HTML and maths made inert text."""
    return "".join("\\" + ch if ch in _MD_INERT else ch for ch in text)


DIFF_CSS = """
<style>
.rs-diff { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 22rem; overflow-y: auto;
  font-size: 0.95rem; line-height: 1.5; padding: 0.5rem 0.75rem; border-radius: 0.4rem;
  border: 1px solid rgba(128,128,128,0.3); }
.rs-diff del.rs-del { background: rgba(255,80,80,0.25); text-decoration: line-through; }
.rs-diff ins.rs-ins { background: rgba(60,200,90,0.28); text-decoration: none; }
.rs-empty { opacity: 0.6; font-style: italic; }
</style>
"""


def block_html(body_html: str, *, label: str = "") -> str:
    """Wrap already-escaped diff HTML in a scrolling, wrapping block; `label` is escaped here."""
    title = f'<div class="rs-label">{_escape(label)}</div>' if label else ""
    body = body_html or '<span class="rs-empty">(empty)</span>'
    return f'{title}<div class="rs-diff">{body}</div>'
