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

import copy
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# The student loader lives in student.py; its names stay importable from here.
from .student import (  # noqa: F401
    SMOLLM2,
    SMOLLM2_FILE,
    default_device,
    load_student,
    resolve_student,
    smollm2_path,
)
from .templates import render_prompt, render_reverse_prompt, template_name

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


# --------------------------------------------------------------------------- the student model


@dataclass
class Student:
    """A causal LM and its tokenizer, loaded from local files only."""

    model: object
    tokenizer: object
    name: str
    device: str

    def scorer(self, template: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
        """The scorer id stored with every score: student model, template, non-default length."""
        suffix = "" if max_length == DEFAULT_MAX_LENGTH else f":{max_length}"
        return f"{self.name}@{template_name(template)}{suffix}"

    def losses(self, seqs: list[_Seq], **batching) -> list[float | None]:
        """Mean target cross-entropy of each sequence (see `sequence_losses`)."""
        return sequence_losses(self, seqs, **batching)


# --------------------------------------------------------------------------- sequences


@dataclass
class _Seq:
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
) -> tuple[dict[str, _Seq], dict[str, int], bool]:
    """The token sequences behind the requested losses, their full lengths, and truncation."""
    parts = set(parts)
    seqs: dict[str, _Seq] = {}
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
        seqs[part] = _Seq(ids=ids, start=max(start, 1), part=part)
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


# --------------------------------------------------------------------------- the fast path


def _batches(seqs: list[_Seq], batch_size: int, batch_tokens: int) -> Iterator[list[_Seq]]:
    """Longest first; a batch grows while its padded size stays within the token budget."""
    batch: list[_Seq] = []
    for seq in sorted(seqs, key=lambda s: len(s.ids), reverse=True):
        width = len(batch[0].ids) if batch else len(seq.ids)
        if batch and (len(batch) >= batch_size or width * (len(batch) + 1) > batch_tokens):
            yield batch
            batch = []
        batch.append(seq)
    if batch:
        yield batch


def _head(model):
    head = model.get_output_embeddings()
    softcap = getattr(model.config, "final_logit_softcapping", None)
    scale = getattr(model.config, "logit_scale", None)

    def logits(hidden):
        out = head(hidden)
        if scale:
            out = out * scale
        if softcap:
            import torch

            out = torch.tanh(out / softcap) * softcap
        return out.float()

    return logits


def _nll_sums(logits_of, hidden, rows, labels, owners, count, rows_per_chunk):
    """Sum of token NLLs per owner, projecting only the hidden rows that predict a target."""
    import torch
    import torch.nn.functional as F

    sums = torch.zeros(count, dtype=torch.float64, device=hidden.device)
    for lo in range(0, len(rows), rows_per_chunk):
        sl = slice(lo, lo + rows_per_chunk)
        nll = F.cross_entropy(logits_of(hidden[rows[sl]]), labels[sl], reduction="none")
        sums.index_add_(0, owners[sl], nll.double())
    return sums


def _shared_prefix(seqs: list[_Seq], minimum: int = 8) -> int:
    """Tokens every sequence starts with, stopping before the first hidden state a loss needs."""
    if len(seqs) < 2:
        return 0
    first = seqs[0].ids
    length = min(min(len(s.ids) for s in seqs), min(s.start for s in seqs) - 1)
    for seq in seqs[1:]:
        n = 0
        while n < length and seq.ids[n] == first[n]:
            n += 1
        length = n
    return length if length >= minimum else 0


def _cache_argument(base) -> str:
    """transformers renamed `past_key_values` to `cache` (5.x warns on the old name)."""
    import inspect

    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def sequence_losses(
    student: Student,
    seqs: list[_Seq],
    *,
    batch_size: int = 1,
    batch_tokens: int = 8192,
    rows_per_chunk: int | None = None,
) -> list[float | None]:
    """Mean target cross-entropy of each sequence (None with no target), in input order."""
    rows_per_chunk = rows_per_chunk or _device_defaults(student.device)["rows"]
    pad = student.tokenizer.pad_token_id or 0
    losses: dict[int, float | None] = {}
    # Versions of one sample repeat sequences (a response reflection keeps the instruction, so
    # its instruction-alone text is the original's): each distinct sequence runs once.
    first: dict[tuple, _Seq] = {}
    copies: list[tuple[int, _Seq]] = []
    for i, seq in enumerate(seqs):
        if seq.targets:
            copies.append((i, first.setdefault((seq.start, tuple(seq.ids)), seq)))
    todo = list(first.values())
    index = {id(seq): n for n, seq in enumerate(todo)}
    found = _distinct_losses(student, todo, index, batch_size, batch_tokens, rows_per_chunk, pad)
    for i, seq in copies:
        losses[i] = found[index[id(seq)]]
    return [losses.get(i) for i in range(len(seqs))]


def _distinct_losses(student, todo, index, batch_size, batch_tokens, rows_per_chunk, pad):
    """Losses by group: sequences of one kind (all P(x) + y, all R(y) + x) start with the same
    template tokens, whose keys and values are computed once and reused by every batch."""
    import torch

    from .kernels import fast_linear

    model, device = student.model, student.device
    base, logits_of = model.base_model, _head(model)
    cache_arg = _cache_argument(base)
    losses: dict[int, float] = {}
    groups: dict[str, list[_Seq]] = {}
    for seq in todo:
        groups.setdefault(seq.part, []).append(seq)
    with torch.inference_mode(), fast_linear(model, device):
        for group in groups.values():
            shared = _shared_prefix(group)
            prefix_cache = None
            if shared:
                from transformers import DynamicCache

                prefix_cache = DynamicCache()
                prefix = torch.tensor([group[0].ids[:shared]], device=device)
                base(input_ids=prefix, use_cache=True, **{cache_arg: prefix_cache})
            for batch in _batches(group, batch_size, batch_tokens):
                width = len(batch[0].ids) - shared
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
                rows, labels, owners = [], [], []
                for b, seq in enumerate(batch):
                    n = len(seq.ids)
                    ids[b, : n - shared] = torch.tensor(seq.ids[shared:])
                    mask[b, :n] = 1
                    # The hidden state at position p predicts token p + 1.
                    rows.append(torch.arange(seq.start - 1, n - 1) - shared + b * width)
                    labels.append(torch.tensor(seq.ids[seq.start :]))
                    owners.append(torch.full((n - seq.start,), b))
                extra = {"use_cache": False}
                if prefix_cache is not None:
                    # A copy (a few MB): a forward pass appends to the cache it is given.
                    past = copy.deepcopy(prefix_cache)
                    if len(batch) > 1:
                        past.batch_repeat_interleave(len(batch))
                    extra = {"use_cache": True, cache_arg: past}
                padded = bool((mask == 0).any())
                hidden = base(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device) if padded else None,
                    **extra,
                ).last_hidden_state
                hidden = hidden.reshape(-1, hidden.shape[-1])
                sums = _nll_sums(
                    logits_of, hidden, torch.cat(rows).to(device), torch.cat(labels).to(device),
                    torch.cat(owners).to(device), len(batch), rows_per_chunk,
                )  # fmt: skip
                for b, seq in enumerate(batch):
                    losses[index[id(seq)]] = (sums[b] / seq.targets).item()
    return losses


def _device_defaults(device: str) -> dict:
    # Sequences are sorted by length within a chunk, so padding stays small. On a CPU small
    # batches win: measured on 2 cores, 4 a pass beat 1 (fewer, larger operations) and 16
    # (more padding and masked attention); bench/bench_ifd.py has the figures. A GPU wants
    # bigger buckets. `rows`: hidden states projected onto the vocabulary at a time; on a CPU
    # 128 rows of logits (25 MB) stay in cache for the log-softmax, where 1024 (200 MB) took
    # a third longer for the projection and loss together.
    if device.startswith("cuda"):
        return {"batch_size": 64, "batch_tokens": 32768, "chunk": 512, "rows": 1024}
    return {"batch_size": 4, "batch_tokens": 4096, "chunk": 64, "rows": 128}


def iter_ifd(
    student: Student,
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
    settings = _device_defaults(student.device)
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
    student: Student, pairs: Iterable[Pair], template: str = "alpaca", **options
) -> list[IfdResult]:
    """Score all pairs with the fast path; see `iter_ifd` for the options."""
    return [result for group in iter_ifd(student, pairs, template, **options) for result in group]


def __getattr__(name: str):
    # The seed's way, the tests' yardstick, lives in reference.py (which imports this module);
    # `from reflection.scoring.ifd import reference_ifd` keeps working.
    if name == "reference_ifd":
        from .reference import reference_ifd

        return reference_ifd
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
