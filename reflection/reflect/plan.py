"""Reflection jobs: what each sample asks of the oracle, and how a reply becomes a candidate.

Each sample becomes a short chain of *jobs*: ``instruction``, ``response`` or ``compress``
alone, or ``instruction`` then ``both`` (response reflection of the instruction-reflected
pair), optionally after ``compress``. A job is named by a deterministic key over (sample id
and content, kind, parent job, model, prompt hash, parameters), so re-running a command skips
every stored job (the key names the sample by id *and* content: the same pair in another
dataset is a new job, answered from the cache). Its request body is encoded once, as
canonical JSON, which is also what the oracle cache is keyed by.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..records import Candidate, Dataset, Sample
from ..store import Store
from ..store.oracle_jobs import ERROR_SUFFIX
from .oracle import Reply, request_body, request_key, request_payload
from .parse import parse
from .pricing import PriceTable
from .prompts import PromptSet, build_messages, grammar, json_schema, prompt_hash
from .settings import MODES, OracleConfig

Progress = Callable[[dict[str, Any]], None]


@dataclass
class RunSummary:
    """What a reflection run did."""

    run_id: int
    status: str
    counters: dict[str, Any]

    def describe(self) -> str:
        c = self.counters
        return (
            f"run {self.run_id} {self.status}: {c.get('stored', 0)} stored"
            f" ({c.get('ok', 0)} ok, {c.get('partial', 0)} partial, {c.get('failed', 0)} parse"
            f" failures, {c.get('truncated', 0)} truncated, {c.get('error', 0)} errors),"
            f" {c.get('skipped', 0)} already done, {c.get('cached', 0)} from cache,"
            f" {c.get('requests', 0)} requests, {c.get('prompt_tokens', 0):,} +"
            f" {c.get('completion_tokens', 0):,} tokens, ${c.get('cost', 0.0):.4f},"
            f" {c.get('elapsed_s', 0.0):.1f} s"
        )


_STEPS = {
    "instruction": ("instruction",),
    "response": ("response",),
    "both": ("instruction", "both"),
    "compress": ("compress",),
}
# What a finished step must provide for the next step of its chain to run.
_NEEDS = {"instruction": ("instruction", "output"), "compress": ("instruction",)}


@dataclass
class Job:
    """One request for one version of one sample."""

    sample_id: int
    content_hash: str
    kind: str  # candidate kind: instruction, response, both, compress
    instruction: str
    input: str
    output: str
    rest: tuple[str, ...] = ()  # kinds still to run after this one
    parent_key: str | None = None
    parent_id: int | None = None
    key: str = ""
    body: dict = field(default_factory=dict)
    request_key: str = ""
    payload: str = ""  # the body as sent, cached and hashed
    prompt_hash: str = ""
    attempts: int = 0

    @property
    def template(self) -> str:
        return "response" if self.kind == "both" else self.kind


class Planner:
    """Turns samples into jobs and oracle replies into candidates; shared by live and batch."""

    def __init__(self, config: OracleConfig, prompts: PromptSet, prices: PriceTable):
        self.config = config
        self.prompts = prompts
        self.prices = prices
        self.params = config.params()
        self.hashes = {
            kind: prompt_hash(kind, prompts=prompts, json_mode=config.json_mode)
            for kind in ("instruction", "response", "compress")
        }

    @staticmethod
    def steps(sample: Sample, mode: str, compress_first: bool) -> tuple[str, ...]:
        """The kinds of job a sample goes through, in order."""
        steps = _STEPS[mode]
        if compress_first and steps[0] == "instruction" and sample.input.strip():
            steps = ("compress", *steps)
        return steps

    def first_jobs(self, samples: Iterable[Sample], mode: str, compress_first: bool) -> list[Job]:
        return [
            self.job(
                s.id,
                s.content_hash,
                self.steps(s, mode, compress_first),
                s.instruction,
                s.input,
                s.output,
            )  # fmt: skip
            for s in samples
        ]

    def job(self, sample_id, content_hash, steps, instruction, input, output, parent=None) -> Job:
        job = Job(sample_id, content_hash, steps[0], instruction, input, output, rest=steps[1:])
        if parent is not None:
            job.parent_key, job.parent_id = parent
        job.prompt_hash = self.hashes[job.template]
        identity = [
            sample_id,
            content_hash,
            job.kind,
            job.parent_key,
            self.config.model,
            job.prompt_hash,
        ]
        key_text = json.dumps([*identity, self.params], sort_keys=True)
        job.key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
        messages = build_messages(
            job.template, instruction, input, output,
            prompts=self.prompts, json_mode=self.config.json_mode,
        )  # fmt: skip
        extra: dict[str, Any] = {}
        if self.config.temperature is not None:
            extra["temperature"] = self.config.temperature
        if self.config.max_tokens is not None:
            extra["max_tokens"] = self.config.max_tokens
        llama = self.config.dialect == "llama.cpp"
        if self.config.json_mode:
            schema = json_schema(job.template)
            extra["response_format"] = (
                {"type": "json_object", "schema": schema["json_schema"]["schema"]}
                if llama
                else schema
            )
        elif llama:
            extra["grammar"] = grammar(job.template)
        job.body = request_body(self.config.model, messages, extra)
        job.payload = request_payload(job.body)
        job.request_key = request_key(job.payload)
        return job

    def child(self, job: Job, done: Candidate) -> Job | None:
        """The next job of the chain, if there is one and the finished step allows it."""
        if not job.rest or done.status not in ("ok", "partial"):
            return None
        if not all(getattr(done, name).strip() for name in _NEEDS.get(job.kind, ())):
            return None
        return self.job(
            job.sample_id, job.content_hash, job.rest, done.instruction, done.input, done.output,
            parent=(job.key, done.id),
        )  # fmt: skip

    def candidate(
        self,
        job: Job,
        reply: Reply,
        run_id: int | None,
        *,
        cached: bool = False,
        batch: bool = False,
    ) -> Candidate:
        cost = 0.0 if cached else self.prices.cost(
            self.config.model, reply.prompt_tokens, reply.completion_tokens, batch=batch
        )  # fmt: skip
        candidate = Candidate(
            sample_id=job.sample_id, kind=job.kind, parent_id=job.parent_id, raw=reply.text,
            model=self.config.model, prompt_hash=job.prompt_hash, params=self.params,
            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
            cost=cost, run_id=run_id, job_key=job.key,
            origin={"request_key": job.request_key, "attempts": reply.attempts,
                    "finish_reason": reply.finish_reason, "cached": cached},
        )  # fmt: skip
        if job.template == "response":
            candidate.instruction, candidate.input = job.instruction, job.input
        if reply.status == "error":
            candidate.status, candidate.error = "error", reply.error
            candidate.job_key = job.key + ERROR_SUFFIX
            return candidate
        parsed = parse(reply.text, job.template, json_mode=self.config.json_mode)
        candidate.critique = parsed.critique
        if job.template == "instruction":
            candidate.instruction, candidate.input = parsed.instruction, parsed.input
            candidate.output = parsed.output
        elif job.template == "response":
            candidate.output = parsed.output
        else:
            candidate.instruction, candidate.output = parsed.instruction, job.output
        candidate.status, candidate.error = parsed.status, parsed.reason
        if reply.status == "truncated":
            limit = self.config.max_tokens
            candidate.status = "truncated"
            candidate.error = "; ".join(
                filter(None, [f"reply cut off at the token limit ({limit})", parsed.reason])
            )
        return candidate


def dataset_of(store: Store, dataset: Dataset | str | int) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else store.dataset(dataset)


class SampleFeed:
    """The samples a run reflects, in source order, read from the store a chunk at a time.

    Holds their ids only, 8 bytes each. A list of the samples themselves held a whole
    dataset: `reflect --limit 20000` on 1,000,000 samples read all of them and peaked at
    1.9 GB."""

    CHUNK = 512

    def __init__(self, store: Store, dataset_id: int, ids: Sequence[int]) -> None:
        self.store, self.dataset_id, self.ids = store, dataset_id, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, part: slice) -> list[Sample]:
        return list(self.store.samples(self.dataset_id, list(self.ids[part])))

    def __iter__(self) -> Iterator[Sample]:
        for start in range(0, len(self.ids), self.CHUNK):
            yield from self[start : start + self.CHUNK]


def samples_of(
    store: Store, dataset: Dataset, sample_ids: Iterable[int] | None, limit: int | None
) -> SampleFeed:
    """The dataset's samples (only `sample_ids` of them, when given), the first `limit`."""
    every = store.sample_id_array(dataset.id, limit if sample_ids is None else None)
    if sample_ids is None:
        return SampleFeed(store, dataset.id, every)
    ids = in_order(every, sample_ids)
    return SampleFeed(store, dataset.id, ids[:limit] if limit is not None else ids)


def in_order(every: array[int], wanted: Iterable[int], chunk: int = 1 << 20) -> array[int]:
    """The ids of `every` that are among `wanted`, in the order of `every`. Looked up in a
    sorted array, not a set: a set of 10,000,000 ids (every undecided sample) takes 600 MB.
    Sorted, not made unique: `np.unique` of 2.9M ids took 200 MB, `np.sort` 26."""
    given = wanted if isinstance(wanted, array) and wanted.typecode == "q" else array("q", wanted)
    if given == every:  # every sample, as a job on all of them names them
        return every
    found: array[int] = array("q")
    if not len(given) or not len(every):
        return found
    keys = np.sort(np.frombuffer(given, dtype=np.int64))
    ids = np.frombuffer(every, dtype=np.int64)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        at = np.minimum(np.searchsorted(keys, part), len(keys) - 1)
        found.frombytes(part[keys[at] == part].tobytes())
    return found


def total_steps(samples: SampleFeed, mode: str, compress_first: bool) -> int:
    """How many jobs the samples go through (a progress total). Read from the samples only
    when a step depends on one (compressing first where there is an input)."""
    if compress_first and _STEPS[mode][0] == "instruction":
        return sum(len(Planner.steps(s, mode, compress_first)) for s in samples)
    return len(samples) * len(_STEPS[mode])


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown reflection mode {mode!r}; use one of {', '.join(MODES)}")
