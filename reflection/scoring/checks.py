"""Content checks: is a version's output an answer at all? Pure, instant, from the text alone.

An oracle's reply can parse cleanly and still not be an answer: empty (cut off at the token
limit before the answer began), talk *about* the answer ("The better answer would be:", a
critique, a report on its own edits), a loop, or a line where a page was asked for. IFD and
r-IFD cannot tell: a student finds an empty or looping text easy to predict. Each check gives a
number, and a failed check gives a flag with a reason a reviewer can read:

- `empty`: no output. `truncated`: the reply was cut off at the token limit (status).
- `meta_talk` (metric: the share of sentences that talk about the answer, the instruction or
  the edits instead of answering); flagged at META_TALK_SHARE or more, when the output is a
  refusal, or when it ends by announcing an answer that never comes ("... would be:").
- `repetitive` (metrics `repetition`, the share of repeated word 4-grams, and `compression`,
  zlib's compressed size over the raw size): flagged at REPEATED_NGRAM_SHARE or more, or at
  COMPRESSION_FLOOR or less for outputs of COMPRESSION_MIN_CHARS characters or more.
- `length` (metric `length_ratio`, output words over the original output's; reflected versions
  only): flagged below LENGTH_RATIO_MIN or above LENGTH_RATIO_MAX (see records.py).

Relevance to the instruction needs the MiniLM embedder and lives in `drift.py` and the runner;
a judge's verdict, where one is configured, counts in `version_flags`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from ..records import (
    CHECKS_METRIC,
    COMPRESSION_FLOOR,
    COMPRESSION_MIN_CHARS,
    EMPTY_FLAG,
    JUDGE_FLOOR,
    JUDGE_LOW_FLAG,
    JUDGE_METRIC,
    LENGTH_FLAG,
    LENGTH_MAX_BASE,
    LENGTH_MIN_WORDS,
    LENGTH_RATIO_MAX,
    LENGTH_RATIO_MIN,
    META_TALK_FLAG,
    META_TALK_SHARE,
    OFF_TOPIC_FLAG,
    RELEVANCE_THRESHOLD,
    REPEATED_NGRAM_SHARE,
    REPETITIVE_FLAG,
    TRUNCATED_FLAG,
    Score,
    compared,
)

CHECK_METRICS = ("meta_talk", "repetition", "compression", "length_ratio", CHECKS_METRIC)
_NGRAM = 4

# Sentences that talk about the answer, the instruction or the edits instead of answering.
# Each pattern is narrow on purpose: "The answer is 42." is an answer, "The answer is correct
# but lacks detail." is not. Checked against the 3,111 Alpaca originals (see the tests).
_ANSWER = r"(?:answer|response|reply)"
_ADVERB = r"(?:(?:also|indeed|still|effectively|further|clearly|only|now|just)\s+)?"
_META = [
    # Verdicts on an answer: a critique where the answer should be.
    rf"\b{_ANSWER}\s+(?:is|was|seems|appears|looks)\s+(?:\w+\s+){{0,3}}?(?:correct|incorrect|"
    r"accurate|inaccurate|good|great|excellent|fine|clear|unclear|concise|detailed|helpful|"
    r"unhelpful|relevant|irrelevant|complete|incomplete|vague|thin|short|brief|generic|"
    r"repetitive|redundant|adequate|informative|comprehensive|wrong|missing|lacking|okay|"
    r"satisfactory|insufficient|perfect|improvement|simplified|expanded|shortened)\b",
    # Second person about the text being written: a reviewer's voice, not an answer's.
    rf"\b(?:your|my)\s+(?:{_ANSWER}|critique|feedback)\b(?!s)",
    r"\byou(?:'ve| have)?\s+(?:requested|asked for|highlighted)\b",
    rf"\b{_ANSWER}\s+you\s+(?:provided|gave|wrote|could provide|can provide)\b",
    r"\b(?:I'?m|I am) glad you\b",
    r"\bI(?:'ll| will)\s+(?:write|provide|make)\s+(?:a|an|the)\s+(?:follow-up|new|better|revised)\b",
    r"\bthe (?:question|instruction|prompt) (?:was|is) (?:a bit |too |very |rather )?(?:unclear|"
    r"vague|ambiguous|broad)\b",
    rf"\b(?:your|the|this|that|original|previous|above|given|initial|assistant'?s)\s+"
    rf"(?:original\s+)?{_ANSWER}\s+{_ADVERB}(?:lacks|contains|provides|includes|covers|fails|"
    r"needs|misses|should|could|would|focuses|mentions|gives|offers|addresses|does not|"
    r"doesn't|did not|can be|has|had|conveys|concludes|aims|fixes|highlights)\b",
    rf"\b(?:this|your|my)\s+{_ANSWER}\s+to\s+the\s+(?:question|instruction|prompt)\b",
    # Announcing an answer (often one that never comes).
    rf"\b(?:better|improved|revised|new|updated|final|corrected|rewritten)\s+(?:{_ANSWER}|"
    r"version)\s+(?:would|could|should|might|will)\s+be\b",
    rf"\bhere(?:'s| is)\s+(?:the\s+|a\s+|my\s+)?(?:better|improved|revised|new|updated|"
    rf"rewritten|corrected)\s+(?:{_ANSWER}|version)\b",
    # Reports on its own edits and plans.
    rf"\b(?:I|we)\s+(?:have\s+|'ve\s+)?{_ADVERB}(?:added|removed|revised|rewrote|rewritten|"
    r"improved|updated|edited|modified|expanded|corrected|rephrased|restructured|clarified)\b",
    r"\b(?:I|we)\s+will\s+(?:now\s+)?(?:provide|rewrite|revise|improve|answer|critique|address)\b",
    r"\b(?:I|we)\s+(?:have\s+|'ve\s+)?made sure\b",
    r"\b(?:I|we)\s+will\s+make sure\b.*\b(?:feedback|answer|response|edit)",
    rf"\b(?:my|the|your)\s+(?:original|previous)\s+(?:{_ANSWER}|message|prompt|question|"
    r"instruction|text)\s+(?:was|is|has been|had been|lacks|did not|does not)\b",
    rf"\b(?:my|the|your)\s+(?:original|previous)\s+(?:{_ANSWER}|message|prompt|instruction)\b",
    r"\bthan the original (?:prompt|question|instruction|answer|response)\b",
    r"\b(?:best|better|improved)\s+(?:answer|response)\s+possible\b",
    r"\b(?:your|my)\s+(?:editing|writing)\s+needs\b",
    r"\b(?:my|your)\s+(?:feedback|editing process|edits)\b",
    r"\b(?:this|that|the)\s+(?:sentence|paragraph|phrase|wording)\s+(?:needed|needs|was|has been|"
    r"should be)\s+(?:rewriting|rewritten|changed|revised|edited|removed|added|improved)\b",
    r"\bthe sentence\s+[\"“'].*\b(?:should|needs)\b",
    rf"\byou\s+(?:have\s+|had\s+)?{_ADVERB}(?:added|changed|removed|rewrote|rewritten)\s+(?:it|"
    r"this|that|one|a|the|descriptive)\b",
    rf"\b(?:this|the|my)\s+(?:revised|improved|updated|rewritten|better)\s+(?:{_ANSWER}|version)\b",
    r"\bto answer (?:the|this|your) question\b",
    # Talk about the parts of a text instead of the text.
    r"\bthe\s+(?:first|second|third|fourth|final|last|next)\s+(?:part|section)\s+(?:focuses|"
    r"discusses|covers|describes|explains|is about|talks|deals|addresses)\b",
    # Talk about the instruction or the critique, and the prompt's own tags.
    r"\b(?:the|this|your)\s+(?:original\s+)?(?:instruction|prompt)\s+(?:asks|requires|wants|"
    r"aims|lacks|is vague|is ambiguous|is unclear|can be rewritten|could be rewritten|"
    r"should be rewritten)\b",
    r"\b(?:the|your|my|a good)\s+critique\b",
    r"\[(?:critique|better answer|new answer|new instruction|new input|answer|instruction|end|"
    r"the answer|response|finish:?|cite[^\]]*)\]",
    rf"\byou\s+(?:should|could|need to|must)\s+(?:include|add|mention|provide|expand|"
    rf"elaborate)\b.*\b{_ANSWER}\b",
    r"\bthe topic (?:that )?you(?:'ve| have)? requested\b",
]
_META_RE = re.compile("|".join(f"(?:{p})" for p in _META), re.IGNORECASE)


def _superset(pattern: str) -> str:
    """The pattern for RE2, matching wherever Python's `re` matches (and a little more).

    RE2 scans in linear time: on the 35 alternatives above it is ~30 x faster than `re`, which
    tries every alternative at every position. RE2's classes are ASCII, so each is widened
    until it holds Python's Unicode one: `\\s` to every Unicode space, `\\w` to anything but a
    space. RE2's `\\b` is ASCII too, but every `\\b` above stands beside an ASCII letter, where
    Python's boundary implies RE2's. The one lookahead, `\\b(?!s)`, is redundant after a word
    (the next character is then not a word character) and is dropped. So no RE2 match means no
    `re` match, and `re` confirms the (rare) hits: the result is `re`'s exactly.
    """
    space = r"[\s\v\x{1c}-\x{1f}\x{85}\pZ]"
    out = pattern.replace(r"\b(?!s)", r"\b").replace(r"\s", space)
    return out.replace(r"\w", r"[^\s\v\x{1c}-\x{1f}\x{85}\pZ]")


def _fast_meta() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    return re2.compile("|".join(f"(?:{_superset(p)})" for p in _META), options)


_META_FAST = _fast_meta()
_REFUSAL = re.compile(
    r"^\s*(?:I'?m sorry|I am sorry|I apologi[sz]e|I cannot|I can'?t|As an AI\b|N/?A\s*$|"
    r"\(the answer\)\s*$)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Checks:
    """One version's check values (metric -> number) and failed checks (flag -> reason)."""

    values: dict[str, float | None] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)


def sentences(text: str) -> list[str]:
    """The text cut at sentence ends and line breaks, empty pieces dropped."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _quote(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


def meta_talk(text: str) -> tuple[float, str | None]:
    """(share of sentences that talk about the answer, the reason to flag or None)."""
    found = sentences(text)
    if not found:
        return 0.0, None
    # A sentence's match is also the whole text's (sentences end at spaces and line breaks),
    # so one RE2 scan of the text settles most outputs: they have no meta talk at all.
    if _META_FAST.search(text):
        meta = [s for s in found if _META_FAST.search(s) and _META_RE.search(s)]
    else:
        meta = []
    share = len(meta) / len(found)
    if _REFUSAL.match(text):
        return max(share, 1.0), f"a refusal or placeholder, not an answer: {_quote(found[0])}"
    if found[-1].endswith(":"):
        return share, f"ends by announcing an answer that does not follow: {_quote(found[-1])}"
    if share >= META_TALK_SHARE:
        return share, (
            f"{len(meta)} of {len(found)} sentences talk about the answer instead of giving"
            f" one, e.g. {_quote(meta[0])}"
        )
    return share, None


def repetition(text: str) -> float:
    """The share of word 4-grams that repeat an earlier one (0 for fewer than 8 of them)."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = [tuple(words[i : i + _NGRAM]) for i in range(len(words) - _NGRAM + 1)]
    if len(grams) < 8:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def compression(text: str) -> float | None:
    """zlib-compressed size over raw size (UTF-8); None for an empty text."""
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / len(raw) if raw else None


def length_ratio(output: str, original: str) -> float | None:
    """Words of the output over words of the original output; None when the original has none."""
    base = len(original.split())
    return len(output.split()) / base if base else None


def content_checks(
    output: str, *, original_output: str | None = None, status: str = "ok", reply: str = ""
) -> Checks:
    """Every check of one version's output; `original_output` only for reflected versions.

    `reply`, the oracle's whole reply, tells why a truncated one was cut off: a reply that
    loops in its critique until the token limit leaves an empty answer, and is flagged
    repetitive as well as empty.
    """
    values: dict[str, float | None] = {}
    flags: dict[str, str] = {}
    if status == "truncated":
        flags[TRUNCATED_FLAG] = "the oracle's reply was cut off at the token limit"
        looping = repetition(reply)
        if looping >= REPEATED_NGRAM_SHARE:
            flags[REPETITIVE_FLAG] = (
                f"the oracle's reply loops until the token limit: {looping:.0%} of its word"
                f" 4-grams repeat earlier ones (flagged at {REPEATED_NGRAM_SHARE:.0%})"
            )
    if not output.strip():
        flags[EMPTY_FLAG] = "the output is empty"
    share, why = meta_talk(output)
    values["meta_talk"] = share
    if why:
        flags[META_TALK_FLAG] = why
    values["repetition"] = repeated = repetition(output)
    values["compression"] = packed = compression(output)
    if REPETITIVE_FLAG in flags:
        pass  # the whole reply loops: said above
    elif repeated >= REPEATED_NGRAM_SHARE:
        flags[REPETITIVE_FLAG] = (
            f"{repeated:.0%} of its word 4-grams repeat earlier ones"
            f" (flagged at {REPEATED_NGRAM_SHARE:.0%})"
        )
    elif (
        packed is not None and len(output) >= COMPRESSION_MIN_CHARS and packed <= COMPRESSION_FLOOR
    ):
        flags[REPETITIVE_FLAG] = (
            f"compresses to {packed:.0%} of its size (flagged at {COMPRESSION_FLOOR:.0%}):"
            " it says the same things over"
        )
    if original_output is not None:
        values["length_ratio"] = ratio = length_ratio(output, original_output)
        words, base = len(output.split()), len(original_output.split())
        if ratio is not None and output.strip():
            if ratio < LENGTH_RATIO_MIN and base >= LENGTH_MIN_WORDS:
                shown, limit = compared(100 * ratio, "<", 100 * LENGTH_RATIO_MIN, digits=0, exact_b=True)  # fmt: skip
                flags[LENGTH_FLAG] = (
                    f"{words} word{'s' * (words != 1)}, {shown}% of the original's {base}"
                    f" (flagged below {limit}%)"
                )
            elif ratio > LENGTH_RATIO_MAX and base >= LENGTH_MAX_BASE:
                times, limit = compared(ratio, ">", LENGTH_RATIO_MAX, digits=1, exact_b=True)
                flags[LENGTH_FLAG] = (
                    f"{words} words, {times} times the original's {base}"
                    f" (flagged above {limit} times)"
                )
    values[CHECKS_METRIC] = float(len(flags))
    return Checks(values, flags)


def check_scores(
    sample_id: int, candidate_id: int | None, checks: Checks, run_id: int | None, scorer: str
) -> list[Score]:
    """The checks as scores; the CHECKS_METRIC score carries the flags and their reasons."""
    return [
        Score(
            sample_id,
            metric,
            value,
            scorer,
            candidate_id,
            {"flags": dict(checks.flags)} if metric == CHECKS_METRIC else {},
            run_id,
        )  # fmt: skip
        for metric, value in checks.values.items()
    ]


def relevance_flags(value: float | None, threshold: float = RELEVANCE_THRESHOLD) -> dict[str, str]:
    """The off_topic flag of a relevance value, with its reason."""
    if value is None or value >= threshold:
        return {}
    shown, limit = compared(value, "<", threshold, exact_b=True)
    return {OFF_TOPIC_FLAG: f"the answer's similarity to the instruction is {shown} < {limit}"}


def version_flags(scores: Iterable[Score]) -> dict[str, str]:
    """Every flag one version's stored scores carry (checks, relevance, a judge's low rating)."""
    flags: dict[str, str] = {}
    for score in scores:
        carried = score.detail.get("flags") if isinstance(score.detail, Mapping) else None
        if isinstance(carried, Mapping):
            flags.update({str(k): str(v) for k, v in carried.items()})
        value = score.value
        if score.metric == JUDGE_METRIC and value is not None and value <= JUDGE_FLOOR:
            flags[JUDGE_LOW_FLAG] = (
                f"the judge ({score.scorer}) rated it {value:g} (flagged at"
                f" {JUDGE_FLOOR:g} or below)"
            )
    return flags
