"""Word-level diffs, and their HTML with every text fragment escaped.

Character diffs split words (`re[-]run`) even after semantic cleanup. So the texts are cut
into tokens (words, whitespace runs, single punctuation marks), each distinct token is mapped
to one character, diff-match-patch diffs those strings, and the result is mapped back.

Dataset and oracle text is untrusted: every fragment passes through `html.escape` before it
becomes part of the HTML, and the markup around it is fixed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from diff_match_patch import diff_match_patch

DELETE, EQUAL, INSERT = -1, 0, 1
Op = tuple[int, str]

# A word (letters, digits, underscore, with inner apostrophes or hyphens), a whitespace run,
# or any other single character (punctuation, symbols).
_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|\s+|[^\w\s]", re.UNICODE)
# Token codes start past ASCII and skip the surrogate block, which cannot be in a str.
_FIRST_CODE = 0x100
_SURROGATES = range(0xD800, 0xE000)
DIFF_TIMEOUT_S = 2.0


def tokenize(text: str) -> list[str]:
    """Words, whitespace runs and single punctuation marks; joined they give back `text`."""
    return _TOKEN.findall(text)


def _code(index: int) -> str:
    point = _FIRST_CODE + index
    if point >= _SURROGATES.start:
        point += len(_SURROGATES)
    return chr(point)


def word_diff(old: str, new: str) -> list[Op]:
    """The word-level diff of two texts: (op, text) pairs, op one of DELETE, EQUAL, INSERT."""
    if old == new:
        return [(EQUAL, old)] if old else []
    codes: dict[str, str] = {}
    tokens: list[str] = []

    def encode(text: str) -> str:
        out = []
        for token in tokenize(text):
            if token not in codes:
                codes[token] = _code(len(tokens))
                tokens.append(token)
            out.append(codes[token])
        return "".join(out)

    old_codes, new_codes = encode(old), encode(new)
    dmp = diff_match_patch()
    dmp.Diff_Timeout = DIFF_TIMEOUT_S
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
