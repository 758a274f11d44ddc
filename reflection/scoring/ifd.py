"""IFD and reversed IFD with a student model, computed exactly as the seed's selection code does.

Definitions (Cherry LLM / Superfiltering / Reflection-Tuning `data_analysis.py`):

- P(x) is the template filled with the instruction (and input); R(y) is the template's no-input
  form filled with `REVERSE_PREFIX + output + REVERSE_SUFFIX`.
- A loss is the mean token cross-entropy (natural log) of a causal LM with labels. A *direct*
  loss predicts every token of a text but the first; a *conditional* loss predicts only the
  target span, which starts at `len(encode(text[:text.rfind(target)]))` tokens.
    loss_A_direct    = output alone
    loss_A_condition = the output span of P(x) + output
    loss_Q_direct    = instruction + input alone (concatenated, no separator)
    loss_Q_condition = the span from the instruction to the end of R(y) + instruction + input
- ppl = exp(loss); IFD = ppl_A_condition / ppl_A_direct; r-IFD = ppl_Q_condition / ppl_Q_direct;
  `ifd_loss` and `rifd_loss` are the same ratios of losses.

Truncation, as the seed: every text is tokenized with `truncation=True` (the tokenizer keeps the
head). Conditional texts keep at most `max_length` tokens. Direct texts keep at most
`max_length - len(prompt) + 1` tokens, where len(prompt) is the (itself capped) token count of
P(x) for the output and of R(y) for the instruction. A conditional target cut off entirely
gives no loss (None). A pair with an empty output gets no scores at all (the seed writes `{}`).

The fast path runs the decoder only, applies the vocabulary projection and log-softmax only at
the positions a loss needs, keeps no hidden states, runs each distinct sequence once (versions
of a sample repeat some), computes the template tokens that all conditional sequences of a
kind start with once and reuses their keys and values, and batches sequences bucketed by
length with right padding and attention masks. `reference_ifd` is the seed's way (four forward
passes with labels at batch size 1) and the yardstick the tests hold the fast path to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .forward import LossModel, device_defaults
from .pairs import DEFAULT_MAX_LENGTH, PARTS, IfdResult, Pair, build_sequences
from .templates import template_name


def iter_ifd(
    student: LossModel,
    pairs: Iterable[Pair],
    template: str = "alpaca",
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    parts: Iterable[str] = PARTS,
    batch_size: int | None = None,
    batch_tokens: int | None = None,
    chunk: int | None = None,
    rows_per_chunk: int | None = None,
) -> Iterator[list[IfdResult]]:
    """Score pairs a chunk at a time (so callers can save as they go), in input order."""
    template = template_name(template)
    parts = tuple(parts)
    settings = device_defaults(student.device)
    batch_size = batch_size or settings["batch_size"]
    batch_tokens = batch_tokens or settings["batch_tokens"]
    chunk = chunk or settings["chunk"]
    pending: list[Pair] = []

    def run(group: list[Pair]) -> list[IfdResult]:
        results, seqs = [], []
        for owner, pair in enumerate(group):
            built, lengths, truncated = build_sequences(
                student.tokenizer, pair, template, max_length, parts
            )
            result = IfdResult(
                losses=dict.fromkeys(parts),
                tokens=lengths,
                truncated=truncated,
                note="" if pair.output else "empty output",
            )
            for seq in built.values():
                seq.owner = owner
                seqs.append(seq)
            results.append(result)
        for seq, loss in zip(
            seqs,
            student.losses(
                seqs,
                batch_size=batch_size,
                batch_tokens=batch_tokens,
                rows_per_chunk=rows_per_chunk,
            ),
            strict=True,
        ):
            results[seq.owner].losses[seq.part] = loss
        return results

    for pair in pairs:
        pending.append(pair)
        if len(pending) >= chunk:
            yield run(pending)
            pending = []
    if pending:
        yield run(pending)


def compute_ifd(
    student: LossModel, pairs: Iterable[Pair], template: str = "alpaca", **options: Any
) -> list[IfdResult]:
    """Score all pairs with the fast path; see `iter_ifd` for the options."""
    return [result for group in iter_ifd(student, pairs, template, **options) for result in group]
