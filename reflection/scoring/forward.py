"""The fast path: the losses of many token sequences with one causal LM.

It runs the decoder only, applies the vocabulary projection and log-softmax only at the
positions a loss needs, keeps no hidden states, runs each distinct sequence once (versions of a
sample repeat some), computes the template tokens that all conditional sequences of a kind
start with once and reuses their keys and values, and batches sequences bucketed by length
with right padding and attention masks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .pairs import DEFAULT_MAX_LENGTH, Seq
from .templates import template_name


class LossModel(Protocol):
    """What IFD scoring needs of a student: a local `Student` or an `EndpointStudent`."""

    name: str
    device: str
    tokenizer: Any

    def scorer(self, template: str, max_length: int = DEFAULT_MAX_LENGTH) -> str: ...

    def losses(self, seqs: list[Seq], **batching: Any) -> list[float | None]: ...


@dataclass
class Student:
    """A causal LM and its tokenizer, loaded from local files only."""

    # A transformers causal LM and its tokenizer: Any, as torch and transformers are optional
    # and mypy does not follow them.
    model: Any
    tokenizer: Any
    name: str
    device: str

    def scorer(self, template: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
        """The scorer id stored with every score: student model, template, non-default length."""
        suffix = "" if max_length == DEFAULT_MAX_LENGTH else f":{max_length}"
        return f"{self.name}@{template_name(template)}{suffix}"

    def losses(self, seqs: list[Seq], **batching: Any) -> list[float | None]:
        """Mean target cross-entropy of each sequence (see `sequence_losses`)."""
        return sequence_losses(self, seqs, **batching)


def _batches(seqs: list[Seq], batch_size: int, batch_tokens: int) -> Iterator[list[Seq]]:
    """Longest first; a batch grows while its padded size stays within the token budget."""
    batch: list[Seq] = []
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


def _shared_prefix(seqs: list[Seq], minimum: int = 8) -> int:
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
    seqs: list[Seq],
    *,
    batch_size: int = 1,
    batch_tokens: int = 8192,
    rows_per_chunk: int | None = None,
) -> list[float | None]:
    """Mean target cross-entropy of each sequence (None with no target), in input order."""
    rows_per_chunk = rows_per_chunk or device_defaults(student.device)["rows"]
    pad = student.tokenizer.pad_token_id or 0
    losses: dict[int, float | None] = {}
    # Versions of one sample repeat sequences (a response reflection keeps the instruction, so
    # its instruction-alone text is the original's): each distinct sequence runs once.
    first: dict[tuple, Seq] = {}
    copies: list[tuple[int, Seq]] = []
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
    groups: dict[str, list[Seq]] = {}
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


def device_defaults(device: str) -> dict:
    # Sequences are sorted by length within a chunk, so padding stays small. On a CPU small
    # batches win: measured on 2 cores, 4 a pass beat 1 (fewer, larger operations) and 16
    # (more padding and masked attention); bench/bench_ifd.py has the figures. A GPU wants
    # bigger buckets. `rows`: hidden states projected onto the vocabulary at a time; on a CPU
    # 128 rows of logits (25 MB) stay in cache for the log-softmax, where 1024 (200 MB) took
    # a third longer for the projection and loss together.
    if device.startswith("cuda"):
        return {"batch_size": 64, "batch_tokens": 32768, "chunk": 512, "rows": 1024}
    return {"batch_size": 4, "batch_tokens": 4096, "chunk": 64, "rows": 128}
