"""What a reflection run will cost, before it starts: requests, tokens, dollars."""

from __future__ import annotations

from collections.abc import Iterable

from ..records import Dataset
from ..store import Store
from .plan import Planner, check_mode, dataset_of, samples_of
from .pricing import Estimate, PriceTable, TokenCounter
from .promoted import default_prompts
from .prompts import PromptSet
from .settings import OracleConfig

ESTIMATE_SAMPLE_CHARS = 2_000_000  # prompt text counted exactly before extrapolating


def estimate_reflection(
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
) -> Estimate:
    """Requests, tokens and cost a run would need, not counting stored or cached jobs."""
    check_mode(mode)
    config = oracle or OracleConfig.from_env()
    prices = prices or PriceTable()
    data = dataset_of(store, dataset)
    prompts = prompts or default_prompts(store)  # the promoted template, else the built-in
    planner = Planner(config, prompts, prices)
    samples = samples_of(store, data, sample_ids, limit)
    counter = TokenCounter()
    requests = prompt_tokens = completion_tokens = 0
    counted_chars = counted_tokens = 0
    for start in range(0, len(samples), 512):  # a chunk at a time: bounded memory
        jobs = planner.first_jobs(samples[start : start + 512], mode, compress_first)
        done = store.candidates_by_job_keys(job.key for job in jobs)
        cached = store.cache_get_many(job.request_key for job in jobs)
        for job in jobs:
            if job.key in done or job.request_key in cached:
                continue
            chars = sum(len(m["content"]) for m in job.body["messages"])
            pair_chars = len(job.instruction) + len(job.input) + len(job.output)
            if counted_chars < ESTIMATE_SAMPLE_CHARS:  # exact counts for a sample, then a ratio
                own = counter.count_messages(job.body["messages"])
                counted_chars, counted_tokens = counted_chars + chars, counted_tokens + own
            ratio = counted_tokens / counted_chars if counted_chars else 0.25
            own, pair = int(chars * ratio) + 4 * len(job.body["messages"]), int(pair_chars * ratio)
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
