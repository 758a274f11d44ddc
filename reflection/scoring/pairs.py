"""What a student scores: pairs, the token sequences behind the four losses, and their results.

The definitions and the truncation rules are in `ifd.py`'s docstring; this module builds the
sequences those rules describe, with no model and no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from .templates import render_prompt, render_reverse_prompt

DEFAULT_MAX_LENGTH = 2048

# The four losses, in the seed's order of storage names.
PARTS = ("A_direct", "A_condition", "Q_direct", "Q_condition")
IFD_METRICS = ("ifd_ppl", "ifd_loss", "ppl_A_direct", "ppl_A_condition")
RIFD_METRICS = ("rifd_ppl", "rifd_loss", "ppl_Q_direct", "ppl_Q_condition")


@dataclass(frozen=True)
class Pair:
    """The text a student scores: one version of a sample."""

    instruction: str
    input: str = ""
    output: str = ""


@dataclass
class IfdResult:
    """The four losses of one pair (None where the seed would give no number) and token counts."""

    losses: dict[str, float | None] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    note: str = ""

    def ppl(self, part: str) -> float | None:
        loss = self.losses.get(part)
        return None if loss is None else math.exp(loss)

    def _ratio(self, top: str, bottom: str, exp: bool) -> float | None:
        a, b = self.losses.get(top), self.losses.get(bottom)
        if a is None or b is None:
            return None
        a, b = (math.exp(a), math.exp(b)) if exp else (a, b)
        return a / b if b else None

    @property
    def ifd_ppl(self) -> float | None:
        return self._ratio("A_condition", "A_direct", exp=True)

    @property
    def rifd_ppl(self) -> float | None:
        return self._ratio("Q_condition", "Q_direct", exp=True)

    def metrics(self) -> dict[str, float | None]:
        """The stored metrics, under the seed's names, for the parts that were computed."""
        found: dict[str, float | None] = {}
        if "A_direct" in self.losses:
            found["ifd_ppl"] = self.ifd_ppl
            found["ifd_loss"] = self._ratio("A_condition", "A_direct", exp=False)
            found["ppl_A_direct"] = self.ppl("A_direct")
            found["ppl_A_condition"] = self.ppl("A_condition")
        if "Q_direct" in self.losses:
            found["rifd_ppl"] = self.rifd_ppl
            found["rifd_loss"] = self._ratio("Q_condition", "Q_direct", exp=False)
            found["ppl_Q_direct"] = self.ppl("Q_direct")
            found["ppl_Q_condition"] = self.ppl("Q_condition")
        return found


@dataclass
class Seq:
    """Token ids and the index of the first token whose loss counts (>= 1)."""

    ids: list[int]
    start: int
    owner: int = 0
    part: str = ""

    @property
    def targets(self) -> int:
        return max(0, len(self.ids) - self.start)


def _encode(tokenizer, text: str, limit: int | None = None) -> list[int]:
    if limit is None:
        return tokenizer.encode(text)
    return tokenizer.encode(text, truncation=True, max_length=limit)


def build_sequences(
    tokenizer,
    pair: Pair,
    template: str = "alpaca",
    max_length: int = DEFAULT_MAX_LENGTH,
    parts: Iterable[str] = PARTS,
) -> tuple[dict[str, Seq], dict[str, int], bool]:
    """The token sequences behind the requested losses, their full lengths, and truncation."""
    parts = set(parts)
    seqs: dict[str, Seq] = {}
    lengths: dict[str, int] = {}
    truncated = False
    if not pair.output:
        return seqs, lengths, truncated

    def add(part: str, text: str, limit: int, target: str | None) -> None:
        nonlocal truncated
        full = _encode(tokenizer, text)
        ids = _encode(tokenizer, text, limit) if len(full) > limit else full
        truncated = truncated or len(full) > limit
        start = 1 if target is None else len(_encode(tokenizer, text[: text.rfind(target)]))
        seqs[part] = Seq(ids=ids, start=max(start, 1), part=part)
        lengths[part] = len(full)

    if parts & {"A_direct", "A_condition"}:
        prompt = render_prompt(template, pair.instruction, pair.input, tokenizer)
        prompt_len = len(_encode(tokenizer, prompt, max_length))
        if "A_direct" in parts:
            add("A_direct", pair.output, max_length - prompt_len + 1, None)
        if "A_condition" in parts:
            add("A_condition", prompt + pair.output, max_length, pair.output)
    if parts & {"Q_direct", "Q_condition"}:
        reverse = render_reverse_prompt(template, pair.output, tokenizer)
        reverse_len = len(_encode(tokenizer, reverse, max_length))
        question = pair.instruction + pair.input
        if "Q_direct" in parts:
            add("Q_direct", question, max_length - reverse_len + 1, None)
        if "Q_condition" in parts:
            add("Q_condition", reverse + question, max_length, pair.instruction)
    return seqs, lengths, truncated
