"""The reflection pipeline: samples → oracle requests → stored candidates. Resumable.

Each sample becomes a short chain of *jobs*: ``instruction``, ``response`` or ``compress``
alone, or ``instruction`` then ``both`` (response reflection of the instruction-reflected
pair), optionally after ``compress``. A job is named by a deterministic key over (sample
id and content, kind, parent job, model, prompt hash, parameters), so re-running a command skips
every stored job (the key names the sample by id *and* content: the same pair in another
dataset is a new job, answered from the cache); a request identical to one already answered
(same model, messages and parameters) is served from the oracle cache and not sent.

Requests run through a bounded pool of workers (`OracleConfig.concurrency`), never in batches
that wait for their slowest member. Finished jobs are buffered for at most `flush_interval`
seconds (20 ms by default, or `flush_items` jobs) and written in one transaction with their cache entries, so a
SIGKILL loses at most the requests in flight and the last fraction of a second of replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, OracleError
from .oracle import (
    Oracle,
    OracleConfig,
    Reply,
    Retry,
    reply_from_response,
    request_body,
    request_key,
    request_payload,
)
from .parse import parse
from .pricing import Estimate, PriceTable, TokenCounter
from .prompts import DEFAULT_PROMPTS, PromptSet, build_messages, grammar, json_schema, prompt_hash
from .records import Candidate, Dataset, Sample
from .store import Store
from .store.oracle_jobs import ERROR_SUFFIX

MODES = ("instruction", "response", "both", "compress")
_STEPS = {
    "instruction": ("instruction",),
    "response": ("response",),
    "both": ("instruction", "both"),
    "compress": ("compress",),
}
# What a finished step must provide for the next step of its chain to run.
_NEEDS = {"instruction": ("instruction", "output"), "compress": ("instruction",)}
Progress = Callable[[dict[str, Any]], None]
ADMIT_CHUNK = 256  # samples planned at a time
QUEUE_AHEAD = 64  # jobs kept queued beyond twice the concurrency


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
        self, job: Job, reply: Reply, run_id: int | None, *, cached=False, batch=False
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


class _Runner:
    """One live run: a worker pool over a queue, and a writer that commits in small batches."""

    def __init__(self, store: Store, planner: Planner, run_id: int, *, progress, stop_event,
                 flush_interval: float, flush_items: int):  # fmt: skip
        self.store, self.planner, self.run_id = store, planner, run_id
        self.config = planner.config
        self.progress, self.stop_event = progress, stop_event
        self.flush_interval, self.flush_items = flush_interval, flush_items
        self.buffer: list[tuple[Job, Candidate, Reply | None]] = []
        self.outstanding = 0
        self.in_flight = 0
        self.stopping = False
        self.fatal: BaseException | None = None
        self.counters: dict[str, Any] = dict.fromkeys(
            ("total", "stored", "ok", "partial", "failed", "truncated", "error", "skipped",
             "cached", "blocked", "requests", "retries", "prompt_tokens", "completion_tokens"), 0
        )  # fmt: skip
        self.counters["cost"] = 0.0
        self.started = time.monotonic()
        self.reported = 0.0
        self._feed: Iterator[Sample] | None = None  # samples not yet planned
        self.all_done = asyncio.Event()

    # -- admitting jobs ------------------------------------------------------------------

    def admit(self, jobs: list[Job]) -> None:
        """Skip stored jobs (following their chains), answer cached ones, queue the rest."""
        while jobs:
            done = self.store.candidates_by_job_keys(job.key for job in jobs)
            cached = self.store.cache_get_many(
                job.request_key for job in jobs if job.key not in done
            )  # fmt: skip
            follow = []
            for job in jobs:
                if job.key in done:
                    self.counters["skipped"] += 1
                    self._chain(job, done[job.key], follow)
                elif job.request_key in cached:
                    reply = reply_from_response(json.loads(cached[job.request_key]))
                    self.counters["cached"] += 1
                    self.outstanding += 1
                    self.buffer.append((job, self.planner.candidate(job, reply, self.run_id,
                                                                    cached=True), None))  # fmt: skip
                else:
                    self.outstanding += 1
                    self._put(job)
            jobs = follow

    def _chain(self, job: Job, done: Candidate, follow: list[Job]) -> None:
        child = self.planner.child(job, done)
        if child is not None:
            follow.append(child)
        elif job.rest:
            self.counters["blocked"] += len(job.rest)

    # -- the pool --------------------------------------------------------------------------

    async def _worker(self, oracle: Oracle) -> None:
        while not self.stopping:
            _, _, job = await self.queue.get()
            if self.stopping:
                return
            if self._feed is not None and self.queue.qsize() < self._low:
                self._refill()
            self.in_flight += 1
            job.attempts += 1
            try:
                tokens = len(job.payload) // 4 if self.config.tpm else 0  # TPM: prompt + max_tokens
                result = await oracle.attempt(
                    job.body, job.attempts, payload=job.payload, tokens=tokens
                )
            except OracleError as exc:
                self.fatal, self.stopping = exc, True
                self.all_done.set()
                return
            finally:
                self.in_flight -= 1
            if isinstance(result, Retry):  # wait outside the pool, then jump the queue
                asyncio.get_running_loop().call_later(result.delay, self._put, job, 0)
                continue
            candidate = self.planner.candidate(job, result, self.run_id)
            self.buffer.append((job, candidate, result))
            if len(self.buffer) >= self.flush_items:
                self.flush()

    def _put(self, job: Job, priority: int = 1) -> None:
        if not self.stopping:
            self._order += 1
            self.queue.put_nowait((priority, self._order, job))

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            self.flush()

    def flush(self) -> None:
        """Commit finished jobs with their cache entries, then queue the chains they continue."""
        if not self.buffer:
            self._refill()
            self._report()
            if self.outstanding == 0 and self._feed is None:
                self.all_done.set()
            return
        batch, self.buffer = self.buffer, []
        rows = []
        for job, _, reply in batch:
            if reply is not None and reply.response is not None:
                response = json.dumps(reply.response, ensure_ascii=False)
                rows.append((job.request_key, self.config.model, job.payload, response))
        self.store.save_oracle_results([candidate for _, candidate, _ in batch], rows)
        follow: list[Job] = []
        c = self.counters
        for job, candidate, _ in batch:
            self.outstanding -= 1
            c["stored"] += 1
            c[candidate.status] += 1
            c["prompt_tokens"] += candidate.prompt_tokens
            c["completion_tokens"] += candidate.completion_tokens
            c["cost"] += candidate.cost
            self._chain(job, candidate, follow)
        if follow and not self.stopping:
            self.admit(follow)
        self._refill()
        self._report()
        if self.outstanding == 0 and not self.buffer and self._feed is None:
            self.all_done.set()

    def snapshot(self) -> dict[str, Any]:
        c = dict(self.counters)
        c["run_id"] = self.run_id
        elapsed = time.monotonic() - self.started
        sent = c["stored"] - c["cached"]
        c["elapsed_s"] = round(elapsed, 3)
        c["rate"] = round(sent / elapsed, 2) if elapsed > 0 else 0.0
        left = c["total"] - c["blocked"] - c["skipped"] - c["stored"]
        c["eta_s"] = round(left / c["rate"], 1) if c["rate"] else None
        c["cost"] = round(c["cost"], 6)
        return c

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.reported < 0.5:
            return
        self.reported = now
        counters = self.snapshot()
        self.store.update_run(self.run_id, counters=counters)
        if self.progress is not None:
            self.progress(counters)

    def _refill(self) -> None:
        """Plan jobs a chunk of samples at a time, keeping the queue just ahead of the pool:
        a run over 100,000 samples never holds 100,000 prompts in memory."""
        while self._feed is not None and not self.stopping and self.queue.qsize() < self._low:
            chunk = list(itertools.islice(self._feed, ADMIT_CHUNK))
            if not chunk:
                self._feed = None
                break
            self.admit(self.planner.first_jobs(chunk, self.mode, self.compress_first))

    async def execute(self, samples: list[Sample], mode: str, compress_first: bool) -> str:
        # Retries (priority 0) go before new jobs (1); the counter keeps each level FIFO.
        self.queue: asyncio.PriorityQueue[tuple[int, int, Job]] = asyncio.PriorityQueue()
        self._order = 0
        self._low = 2 * self.config.concurrency + QUEUE_AHEAD
        self.mode, self.compress_first = mode, compress_first
        self._feed = iter(samples)
        self.counters["total"] = sum(
            len(Planner.steps(sample, mode, compress_first)) for sample in samples
        )
        async with Oracle(self.config) as oracle:
            self._refill()
            self.flush()
            tasks = [
                asyncio.create_task(self._worker(oracle)) for _ in range(self.config.concurrency)
            ]
            tasks.append(asyncio.create_task(self._flusher()))
            while not self.all_done.is_set():
                if self.stop_event is not None and self.stop_event.is_set():
                    self.stopping = True
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.all_done.wait(), 0.1)
            while self.in_flight and self.fatal is None:  # let requests already sent finish
                await asyncio.sleep(0.02)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.counters["requests"] = oracle.requests
            self.counters["retries"] = oracle.retries
        self.flush()
        self._report(force=True)
        if self.fatal is not None:
            raise self.fatal
        return "stopped" if self.stopping else "done"


def _dataset(store: Store, dataset: Dataset | str | int) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else store.dataset(dataset)


def _samples(store: Store, dataset: Dataset, sample_ids, limit) -> list[Sample]:
    samples = list(store.samples(dataset.id, ids=sample_ids))
    return samples[:limit] if limit is not None else samples


def _check(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown reflection mode {mode!r}; use one of {', '.join(MODES)}")


def reflect_dataset(
    store: Store,
    dataset: Dataset | str | int,
    *,
    mode: str = "instruction",
    oracle: OracleConfig | None = None,
    prompts: PromptSet = DEFAULT_PROMPTS,
    prices: PriceTable | None = None,
    sample_ids: Iterable[int] | None = None,
    limit: int | None = None,
    compress_first: bool = False,
    batch: bool = False,
    progress: Progress | None = None,
    stop_event: threading.Event | None = None,
    flush_interval: float = 0.02,
    flush_items: int = 256,
    poll_interval: float = 30.0,
) -> RunSummary:
    """Reflect a dataset's samples with an oracle; resumable, safe to call from a thread.

    `mode`: instruction, response, both or compress. `oracle` holds the endpoint, model, key
    (never stored), concurrency, retries, limits and generation parameters. `sample_ids` and
    `limit` narrow the work. `progress(counters)` is called about twice a second with the
    run's counters (run_id, total, stored, ok, partial, failed, truncated, error, skipped,
    cached, blocked, prompt_tokens, completion_tokens, cost, rate, eta_s, elapsed_s), which
    are also saved on the run. Setting `stop_event` ends the run after the requests in flight
    (status ``stopped``); calling again resumes. With `batch=True` the OpenAI Batch API is
    used, and a stopped or interrupted batch run is resumed by the next call (status
    ``submitted`` until its batches finish). Give each thread its own `Store`.
    """
    _check(mode)
    config = oracle or OracleConfig()
    config.validate()
    data = _dataset(store, dataset)
    planner = Planner(config, prompts, prices or PriceTable())
    samples = _samples(store, data, sample_ids, limit)
    if batch:
        from .batch import run_batch

        return run_batch(store, data, planner, samples, mode=mode, compress_first=compress_first,
                         progress=progress, stop_event=stop_event, poll_interval=poll_interval)  # fmt: skip
    settings = {
        "mode": mode, "dataset": data.name, "samples": len(samples), "limit": limit,
        "compress_first": compress_first, "batch": False, "prompt_hashes": planner.hashes,
        "templates": prompts.instruction.source, **config.settings(),
    }  # fmt: skip
    run = store.start_run("reflect", data.id, settings)
    runner = _Runner(store, planner, run.id, progress=progress, stop_event=stop_event,
                     flush_interval=flush_interval, flush_items=flush_items)  # fmt: skip
    try:
        status = asyncio.run(runner.execute(samples, mode, compress_first))
    except BaseException as exc:
        runner.flush()  # whatever finished is kept
        interrupted = isinstance(exc, KeyboardInterrupt)
        store.update_run(
            run.id,
            counters=runner.snapshot(),
            status="stopped" if interrupted else "failed",
            error="interrupted" if interrupted else str(exc) or type(exc).__name__,
        )
        raise
    counters = runner.snapshot()
    store.update_run(run.id, counters=counters, status=status)
    return RunSummary(run.id, status, counters)


def estimate_reflection(
    store: Store,
    dataset: Dataset | str | int,
    *,
    mode: str = "instruction",
    oracle: OracleConfig | None = None,
    prompts: PromptSet = DEFAULT_PROMPTS,
    prices: PriceTable | None = None,
    sample_ids: Iterable[int] | None = None,
    limit: int | None = None,
    compress_first: bool = False,
    batch: bool = False,
) -> Estimate:
    """Requests, tokens and cost a run would need, not counting stored or cached jobs."""
    _check(mode)
    config = oracle or OracleConfig()
    prices = prices or PriceTable()
    data = _dataset(store, dataset)
    planner = Planner(config, prompts, prices)
    jobs = planner.first_jobs(_samples(store, data, sample_ids, limit), mode, compress_first)
    done = store.candidates_by_job_keys(job.key for job in jobs)
    cached = store.cache_get_many(job.request_key for job in jobs)
    counter = TokenCounter()
    requests = prompt_tokens = completion_tokens = 0
    for job in jobs:
        if job.key in done or job.request_key in cached:
            continue
        own = counter.count_messages(job.body["messages"])
        pair = counter.count(job.instruction + job.input + job.output)
        # A reflection is usually somewhat longer than the pair it improves.
        reply = int(pair * 1.3) + 120
        if config.max_tokens:
            reply = min(reply, config.max_tokens)
        steps = 1 + len(job.rest)
        requests += steps
        prompt_tokens += own + (steps - 1) * (own - pair + reply)
        completion_tokens += steps * reply
    cost = prices.cost(config.model, prompt_tokens, completion_tokens, batch=batch)
    return Estimate(requests, prompt_tokens, completion_tokens, cost,
                    prices.price(config.model) is not None, counter.method)  # fmt: skip
