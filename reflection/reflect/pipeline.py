"""The reflection pipeline: samples → oracle requests → stored candidates. Resumable.

Samples become chains of jobs (see `reflection.reflect.plan`). Re-running a command skips every
stored job, and a request identical to one already answered (same model, messages and
parameters) is served from the oracle cache and not sent.

Requests run through a bounded pool of workers (`OracleConfig.concurrency`), never in batches
that wait for their slowest member; a request waiting to be retried waits outside the pool.
Each reply is committed with its cache entry as soon as it is read, before it is counted
or its chain continues (WAL with synchronous=NORMAL makes a commit cheap), so a SIGKILL loses
at most the requests in flight: a reply that was paid for and read is never asked for again.
Answers served from the cache are not paid for; they are written every `flush_interval`
seconds (20 ms by default), in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import OracleError
from ..records import Candidate, Dataset, Sample, stored_id
from ..store import Store
from .estimate import estimate_reflection
from .oracle import Oracle, Reply, Retry, reply_from_response
from .plan import (
    MODES,
    Job,
    Planner,
    Progress,
    RunSummary,
    SampleFeed,
    check_mode,
    dataset_of,
    samples_of,
    total_steps,
)
from .pricing import PriceTable
from .promoted import default_prompts
from .prompts import PromptSet
from .settings import OracleConfig

__all__ = ["MODES", "Job", "Planner", "RunSummary", "estimate_reflection", "reflect_dataset"]

ADMIT_CHUNK = 256  # samples planned at a time
QUEUE_AHEAD = 64  # jobs kept queued beyond twice the concurrency


class _Runner:
    """One live run: a worker pool over a queue; each reply committed as it is read."""

    def __init__(self, store: Store, planner: Planner, run_id: int, *, progress, stop_event,
                 flush_interval: float):  # fmt: skip
        self.store, self.planner, self.run_id = store, planner, run_id
        self.config = planner.config
        self.progress, self.stop_event = progress, stop_event
        self.flush_interval = flush_interval
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
            follow: list[Job] = []
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
            self.flush()  # stored before it is counted: a kill cannot lose a paid reply

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
        c["in_flight"] = self.in_flight
        elapsed = time.monotonic() - self.started
        sent = c["stored"] - c["cached"]
        c["elapsed_s"] = round(elapsed, 3)
        c["rate"] = round(sent / elapsed, 4) if elapsed > 0 else 0.0  # 1 in 60 s: 0.0167
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

    async def execute(self, samples: SampleFeed, mode: str, compress_first: bool) -> str:
        # Retries (priority 0) go before new jobs (1); the counter keeps each level FIFO.
        self.queue: asyncio.PriorityQueue[tuple[int, int, Job]] = asyncio.PriorityQueue()
        self._order = 0
        self._low = 2 * self.config.concurrency + QUEUE_AHEAD
        self.mode, self.compress_first = mode, compress_first
        self._feed = iter(samples)
        self.counters["total"] = total_steps(samples, mode, compress_first)
        async with Oracle(self.config) as oracle:
            self._refill()
            self.flush()
            tasks = [
                asyncio.create_task(self._worker(oracle)) for _ in range(self.config.concurrency)
            ]
            tasks.append(asyncio.create_task(self._flusher()))
            interrupted = False
            try:
                try:
                    while not self.all_done.is_set():
                        if self.stop_event is not None and self.stop_event.is_set():
                            self.stopping = True
                            break
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.all_done.wait(), 0.1)
                except asyncio.CancelledError:
                    # Ctrl-C: asyncio.run cancels this task. Replies to requests already sent
                    # are paid for, so they are awaited and kept like a stop's; a second
                    # Ctrl-C makes asyncio.run raise KeyboardInterrupt at once.
                    self.stopping = interrupted = True
                    self.counters["interrupted"] = True
                    self._report(force=True)
                while self.in_flight and self.fatal is None:  # let requests already sent finish
                    await asyncio.sleep(0.02)
            finally:
                # Idle workers wait on the queue: end them before the client closes, so none
                # sends on a closed client.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            self.counters["requests"] = oracle.requests
            self.counters["retries"] = oracle.retries
        self.flush()
        self._report(force=True)
        if self.fatal is not None:
            raise self.fatal
        if interrupted:  # asyncio.run turns this back into the KeyboardInterrupt it was
            raise asyncio.CancelledError
        return "stopped" if self.stopping else "done"


def reflect_dataset(
    store: Store,
    dataset: Dataset | str | int,
    *,
    mode: str = "instruction",
    oracle: OracleConfig | None = None,
    prompts: PromptSet | None = None,
    prices: PriceTable | None = None,
    sample_ids: Iterable[int] | None = None,
    limit: int | None = None,
    compress_first: bool = False,
    batch: bool = False,
    progress: Progress | None = None,
    stop_event: threading.Event | None = None,
    flush_interval: float = 0.02,
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
    check_mode(mode)
    config = oracle or OracleConfig.from_env()
    config.validate()
    data = dataset_of(store, dataset)
    prompts = prompts or default_prompts(store)  # the promoted template, else the built-in
    planner = Planner(config, prompts, prices or PriceTable())
    samples = samples_of(store, data, sample_ids, limit)
    if batch:
        from .batch import run_batch

        return run_batch(store, data, planner, samples, mode=mode, compress_first=compress_first,
                         progress=progress, stop_event=stop_event, poll_interval=poll_interval)  # fmt: skip
    settings = {
        "mode": mode, "dataset": data.name, "samples": len(samples), "limit": limit,
        "compress_first": compress_first, "batch": False, "prompt_hashes": planner.hashes,
        "templates": prompts.instruction.source, **config.settings(),
    }  # fmt: skip
    with store.run("reflect", data.id, settings) as run:
        runner = _Runner(store, planner, stored_id(run), progress=progress, stop_event=stop_event,
                         flush_interval=flush_interval)  # fmt: skip
        try:
            run.status = asyncio.run(runner.execute(samples, mode, compress_first))
        except BaseException:
            runner.flush()  # whatever finished is kept
            run.counters = runner.snapshot()
            raise
        run.counters = runner.snapshot()
    return RunSummary(stored_id(run), run.status, run.counters)
