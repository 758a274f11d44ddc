"""OpenAI Batch API mode: half the price, hours instead of minutes, same candidates.

One batch per step of the chain (``both`` needs the instruction reflections before it can ask
for the response reflections). The batch id is saved in the run's settings as soon as the
batch is submitted, so a later call with the same arguments finds the run still ``running``
and resumes polling instead of paying for a second batch. Results are matched to jobs by
``custom_id`` (the job key), which is recomputed from the samples on resume.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import openai

from ..errors import OracleError
from ..records import Candidate, Dataset
from ..store import Store
from .oracle import Reply, reply_from_response
from .plan import Job, Planner, Progress, RunSummary, SampleFeed, total_steps

_FINAL = ("completed", "failed", "expired", "cancelled")
_COUNTERS = ("total", "stored", "ok", "partial", "failed", "truncated", "error", "skipped",
             "cached", "blocked", "requests", "prompt_tokens", "completion_tokens")  # fmt: skip


def _resolve(
    store: Store, planner: Planner, run_id: int, jobs: list[Job], counters: dict[str, Any]
) -> list[Job]:
    """Follow chains through stored and cached jobs; return the jobs that need the oracle."""
    pending: list[Job] = []
    while jobs:
        done = store.candidates_by_job_keys(job.key for job in jobs)
        cached = store.cache_get_many(job.request_key for job in jobs if job.key not in done)
        finished, fresh = [], []
        for job in jobs:
            if job.key in done:
                finished.append((job, done[job.key]))
            elif job.request_key in cached:
                reply = reply_from_response(json.loads(cached[job.request_key]))
                found = planner.candidate(job, reply, run_id, cached=True)
                fresh.append(found)
                finished.append((job, found))
                counters["cached"] += 1
            else:
                pending.append(job)
        if fresh:  # stored first: their children need their ids
            store.save_oracle_results(fresh, [])
            _count(counters, fresh)
        jobs = []
        for job, found in finished:
            child = planner.child(job, found)
            if child is not None:
                jobs.append(child)
            elif job.rest:
                counters["blocked"] += len(job.rest)
    return pending


def _count(counters: dict[str, Any], candidates: Iterable[Candidate]) -> None:
    for candidate in candidates:
        counters["stored"] += 1
        counters[candidate.status] += 1
        counters["prompt_tokens"] += candidate.prompt_tokens
        counters["completion_tokens"] += candidate.completion_tokens
        counters["cost"] = round(counters["cost"] + candidate.cost, 6)


def _find_run(store: Store, dataset: Dataset, settings: dict) -> Any:
    """The newest unfinished batch run of the same work, to resume."""
    same = ("mode", "model", "prompt_hashes", "temperature", "reply_limit", "json_mode",
            "dialect", "compress_first", "base_url")  # fmt: skip
    for run in reversed(store.runs(kind="reflect", dataset_id=dataset.id)):
        resumable = run.status == "running" and run.settings.get("batch_state")
        if resumable and all(run.settings.get(name) == settings.get(name) for name in same):
            return run
    return None


def _submit(client: openai.OpenAI, jobs: list[Job]) -> tuple[str, str]:
    lines = [
        json.dumps(
            {
                "custom_id": job.key,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": job.body,
            },
            ensure_ascii=False,
        )  # fmt: skip
        for job in jobs
    ]
    upload = client.files.create(
        file=("reflection-batch.jsonl", ("\n".join(lines) + "\n").encode("utf-8")),
        purpose="batch",
    )
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id, upload.id


def _results(client: openai.OpenAI, batch) -> dict[str, Reply]:
    replies: dict[str, Reply] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            response = item.get("response") or {}
            if response.get("status_code") == 200:
                replies[item["custom_id"]] = reply_from_response(response["body"], attempts=1)
            else:
                error = item.get("error") or (response.get("body") or {}).get("error") or {}
                message = error.get("message") if isinstance(error, dict) else str(error)
                status = response.get("status_code", "")
                replies[item["custom_id"]] = Reply(
                    status="error", error=f"batch item failed {status}: {message}", attempts=1
                )
    return replies


def run_batch(
    store: Store,
    dataset: Dataset,
    planner: Planner,
    samples: SampleFeed,
    *,
    mode: str,
    compress_first: bool,
    progress: Progress | None,
    stop_event: threading.Event | None,
    poll_interval: float,
) -> RunSummary:
    """Reflect through the Batch API, submitting or resuming one batch per chain step."""
    config = planner.config
    settings = {
        "mode": mode, "dataset": dataset.name, "samples": len(samples),
        "compress_first": compress_first, "batch": True, "prompt_hashes": planner.hashes,
        **config.settings(),
    }  # fmt: skip
    run = _find_run(store, dataset, settings)
    if run is None:
        run = store.start_run("reflect", dataset.id, settings)
    else:
        settings = run.settings
    counters = {**dict.fromkeys(_COUNTERS, 0), "cost": 0.0, **run.counters}
    counters["total"] = total_steps(samples, mode, compress_first)
    client = openai.OpenAI(
        api_key=config.api_key or "no-key", base_url=config.base_url, timeout=config.timeout
    )
    started = time.monotonic()
    # Items a batch failed are retried in the next one, like a live request, within a bound.
    rounds, max_rounds = 0, config.max_attempts * 3
    try:
        while rounds < max_rounds:
            rounds += 1
            jobs = planner.first_jobs(samples, mode, compress_first)
            step = {**counters, "cached": 0, "blocked": 0}
            pending = _resolve(store, planner, run.id, jobs, step)
            counters.update(step)
            state = settings.get("batch_state")
            if not pending:
                break
            if not state:
                batch_id, file_id = _submit(client, pending)
                state = {"batch_id": batch_id, "input_file_id": file_id, "jobs": len(pending)}
                settings = {**settings, "batch_state": state}
                store.update_run(run.id, settings=settings, counters=counters)
            while True:
                batch = client.batches.retrieve(state["batch_id"])
                counters["batch_status"] = batch.status
                if progress is not None:
                    elapsed = round(time.monotonic() - started, 3)
                    progress({**counters, "run_id": run.id, "elapsed_s": elapsed})
                if batch.status in _FINAL:
                    break
                if stop_event is not None and stop_event.is_set():
                    store.update_run(run.id, counters=counters)  # still running: resume later
                    return RunSummary(run.id, "submitted", counters)
                time.sleep(poll_interval)
            replies = _results(client, batch)
            by_key = {job.key: job for job in pending}
            candidates, rows = [], []
            for key, job in by_key.items():
                reply = replies.get(key) or Reply(
                    status="error", error=f"batch {batch.id} {batch.status} without this item"
                )
                counters["requests"] += 1
                candidates.append(planner.candidate(job, reply, run.id, batch=True))
                if reply.response is not None:
                    rows.append((job.request_key, config.model, json.dumps(job.body),
                                 json.dumps(reply.response)))  # fmt: skip
            store.save_oracle_results(candidates, rows)
            _count(counters, candidates)
            settings = {k: v for k, v in settings.items() if k != "batch_state"}
            store.update_run(run.id, settings=settings, counters=counters)
            if all(c.status == "error" for c in candidates):
                break  # the endpoint failed the whole batch: do not loop on it
        # Errors a later batch replaced are gone: count what the run holds now.
        held = store.reflect_counts(run.id)
        counters.update({status: held.get(status, 0) for status in
                         ("ok", "partial", "failed", "truncated", "error")})  # fmt: skip
        counters["stored"] = sum(held.values())
    except openai.APIStatusError as exc:
        store.update_run(run.id, counters=counters, status="failed", error=str(exc))
        raise OracleError(f"Batch API request failed: HTTP {exc.status_code}") from None
    counters["elapsed_s"] = round(time.monotonic() - started, 3)
    store.update_run(run.id, counters=counters, status="done")
    return RunSummary(run.id, "done", counters)
