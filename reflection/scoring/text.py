"""Text statistics: pure and instant, no model needed.

- `words_*`: whitespace-separated words of the instruction, input and output.
- `tokens_*`: word pieces (runs of letters or digits, and single punctuation marks), a
  tokenizer-free estimate; pass `count_tokens` to count with a real tokenizer instead.
- `diff_*` (reflected versions only): how much changed against the original, 0 (nothing) to 1
  (everything): 1 - difflib's similarity ratio over the word pieces (computed by cydifflib,
  the same algorithm compiled).
- `subject_overlap` (reflected versions only): the share of content words the two instructions
  (with their inputs) have in common, over the shorter one's (the overlap coefficient). A
  reflected instruction about the same subject keeps its key nouns; below
  SUBJECT_THRESHOLD it is flagged `subject_changed`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import cydifflib

from ..records import Score

SCORER = "text"
SUBJECT_THRESHOLD = 0.2
TEXT_METRICS = (
    "words_instruction",
    "words_input",
    "words_output",
    "tokens_instruction",
    "tokens_output",
    "diff_instruction",
    "diff_output",
    "diff_ratio",
    "subject_overlap",
)

_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_WORD = re.compile(r"[^\W\d_]{2,}|\d+", re.UNICODE)
# Words that say nothing about the subject of an instruction.
_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    yours please give write provide create describe explain list make find generate tell use
    using based following given new one two three some way ways example examples sentence text
    paragraph word words answer question response instruction input output task
    something anything thing things
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def word_count(text: str) -> int:
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Word pieces: runs of letters or digits, and single punctuation marks."""
    return _PIECE.findall(text)


def diff_ratio(before: str, after: str) -> float:
    """How much of the text changed: 0.0 identical, 1.0 nothing in common (by word pieces)."""
    a, b = pieces(before), pieces(after)
    if not a and not b:
        return 0.0
    return 1.0 - cydifflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _stem(word: str) -> str:
    # Light plural/verb-ending stripping, enough to match "poems" with "poem".
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased, lightly stemmed words of a text minus stop words."""
    return {_stem(w) for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOPWORDS}


def subject_overlap(before: str, after: str) -> float | None:
    """Overlap coefficient of content words; None when either text has none."""
    a, b = content_words(before), content_words(after)
    if not a or not b:
        return None
    return len(a & b) / min(len(a), len(b))


def text_stats(
    instruction: str,
    input: str,
    output: str,
    original: tuple[str, str, str] | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> dict[str, float | None]:
    """The text metrics of one version; comparisons when the original pair is given."""
    count = count_tokens or (lambda text: len(pieces(text)))
    stats: dict[str, float | None] = {
        "words_instruction": word_count(instruction),
        "words_input": word_count(input),
        "words_output": word_count(output),
        "tokens_instruction": count(instruction + ("\n" + input if input else "")),
        "tokens_output": count(output),
    }
    if original is not None:
        o_instruction, o_input, o_output = original
        stats["diff_instruction"] = diff_ratio(
            f"{o_instruction}\n{o_input}", f"{instruction}\n{input}"
        )
        stats["diff_output"] = diff_ratio(o_output, output)
        stats["diff_ratio"] = diff_ratio(
            f"{o_instruction}\n{o_input}\n{o_output}", f"{instruction}\n{input}\n{output}"
        )
        stats["subject_overlap"] = subject_overlap(
            f"{o_instruction} {o_input}", f"{instruction} {input}"
        )
    return stats


def text_scores(
    sample_id: int,
    candidate_id: int | None,
    stats: dict[str, float | None],
    run_id: int | None = None,
    scorer: str = SCORER,
) -> list[Score]:
    """Scores for the store; `subject_overlap` carries the `subject_changed` flag."""
    scores = []
    for metric, value in stats.items():
        detail = {}
        if metric == "subject_overlap" and value is not None:
            detail["subject_changed"] = value < SUBJECT_THRESHOLD
        scores.append(Score(sample_id, metric, value, scorer, candidate_id, detail, run_id))
    return scores
