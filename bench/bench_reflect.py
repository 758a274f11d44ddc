"""Benchmark: the reflection pipeline against a seed-style loop, with and without faults.

Runs the fake OpenAI-compatible server (tests/oracle_server.py) in its own process with a
fixed latency, then measures, in one run and against the same server:

- ideal: concurrency ÷ latency (the most any client could do);
- plain loop: a semaphore around `chat.completions.create`, no store (a reference);
- pipeline: `reflect_dataset` over real Alpaca samples, SQLite store included;
- seed-style loop: batches of 10 sent with asyncio.gather, the whole batch retried after
  10·2ⁿ s on any error (as the original Reflection-Tuning scripts did);
- pipeline under faults: 10 % 429 (Retry-After: 1) and 5 % 500, checked for completeness,
  duplicates and the retry bound;
- seed-style loop under the same faults, for at most --seed-fault-cap seconds.

    python bench/bench_reflect.py                 # 3,000 samples, concurrency 128, 200 ms
    python bench/bench_reflect.py --samples 1000 --seed-samples 200

Prints a table; the speed targets are ratios in it, never assertions in tests. CPU ms/item
(this process only: the server has its own) shows the client's own cost, which decides the
rate once the machine's cores are shared: at 0.8 ms an item one free core allows ~1,250/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from alpaca_data import load_alpaca  # noqa: E402
from oracle_server import OracleServer  # noqa: E402

from reflection.records import Sample  # noqa: E402
from reflection.reflect.pipeline import reflect_dataset  # noqa: E402
from reflection.reflect.prompts import build_messages  # noqa: E402
from reflection.reflect.settings import OracleConfig  # noqa: E402
from reflection.store import Store  # noqa: E402


def load_samples(count: int) -> list[Sample]:
    records = load_alpaca()
    samples = []
    for index in range(count):  # repeat the pairs with a suffix if more are asked for
        record = records[index % len(records)]
        suffix = f" ({index // len(records)})" if index >= len(records) else ""
        samples.append(
            Sample(
                instruction=record["instruction"] + suffix,
                input=record.get("input", ""),
                output=record["output"],
                position=index,
            )
        )
    return samples


def fresh_store(folder: Path, name: str, samples: list[Sample]) -> Store:
    store = Store(folder / f"{name}.db")
    dataset = store.ensure_dataset("bench")
    store.add_samples(dataset.id, samples)
    return store


def messages_for(samples: list[Sample]) -> list[list[dict]]:
    return [build_messages("response", s.instruction, s.input, s.output) for s in samples]


async def plain_loop(base_url: str, requests: list[list[dict]], concurrency: int) -> float:
    """A semaphore around the openai client: the reference a pipeline is compared with."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(messages):
        async with semaphore:
            return await client.chat.completions.create(model="bench", messages=messages)

    started = time.perf_counter()
    await asyncio.gather(*(one(m) for m in requests))
    wall = time.perf_counter() - started
    await client.close()
    return wall


async def seed_loop(base_url: str, requests: list[list[dict]], cap: float) -> tuple[float, int]:
    """Batches of 10 with asyncio.gather; any error retries the whole batch after 10·2ⁿ s."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    started = time.perf_counter()
    done = 0
    for start in range(0, len(requests), 10):
        batch = requests[start : start + 10]
        attempt = 0
        while True:
            if time.perf_counter() - started > cap:
                await client.close()
                return time.perf_counter() - started, done
            try:
                await asyncio.gather(
                    *(client.chat.completions.create(model="bench", messages=m) for m in batch)
                )
                break
            except openai.OpenAIError:
                await asyncio.sleep(min(10 * 2**attempt, cap))
                attempt += 1
        done += len(batch)
    await client.close()
    return time.perf_counter() - started, done


def pipeline(store: Store, base_url: str, concurrency: int, max_attempts: int) -> tuple:
    config = OracleConfig(
        model="gpt-4o-mini",
        base_url=base_url,
        api_key="bench",
        concurrency=concurrency,
        max_attempts=max_attempts,
        timeout=30,
    )
    started = time.perf_counter()
    summary = reflect_dataset(store, "bench", mode="response", oracle=config)
    return time.perf_counter() - started, summary


def check_faulted(store: Store, stats: dict, samples: int, max_attempts: int) -> str:
    rows = store.query(
        "SELECT sample_id, count(*) AS n, max(status) AS status FROM candidates GROUP BY sample_id"
    )
    terminal = sum(1 for r in rows if r["status"] in ("ok", "partial", "failed", "error"))
    duplicated = sum(1 for r in rows if r["n"] > 1)
    bound = samples * max_attempts
    return (
        f"{terminal}/{samples} terminal, {duplicated} duplicated,"
        f" {stats['requests']} requests (bound {bound}), faults {stats['faults']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Reflection pipeline benchmark")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--seed-samples", type=int, default=500)
    parser.add_argument("--seed-fault-samples", type=int, default=100)
    parser.add_argument("--seed-fault-cap", type=float, default=120.0)
    parser.add_argument("--max-attempts", type=int, default=8)
    args = parser.parse_args()

    samples = load_samples(args.samples)
    ideal = args.concurrency / args.latency
    results: list[tuple[str, int, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp, OracleServer(latency=args.latency) as server:
        folder = Path(tmp)
        requests = messages_for(samples)

        cpu = time.process_time()
        wall = asyncio.run(plain_loop(server.base_url, requests, args.concurrency))
        cpu = time.process_time() - cpu
        results.append(("plain semaphore loop (no store)", len(requests), wall, cpu, ""))

        store = fresh_store(folder, "clean", samples)
        server.reset()
        cpu = time.process_time()
        wall, summary = pipeline(store, server.base_url, args.concurrency, args.max_attempts)
        cpu = time.process_time() - cpu
        note = f"{summary.counters['ok']} ok, {server.stats()['requests']} requests"
        results.append(("pipeline (store included)", summary.counters["stored"], wall, cpu, note))
        clean_rate = summary.counters["stored"] / wall

        seed_requests = requests[: args.seed_samples]
        cpu = time.process_time()
        wall, done = asyncio.run(seed_loop(server.base_url, seed_requests, cap=600))
        cpu = time.process_time() - cpu
        results.append(("seed-style loop", done, wall, cpu, ""))
        seed_rate = done / wall

        server.configure(p429=0.10, p500=0.05, retry_after=1)
        faulted = fresh_store(folder, "faults", samples)
        server.reset()
        cpu = time.process_time()
        wall, summary = pipeline(faulted, server.base_url, args.concurrency, args.max_attempts)
        cpu = time.process_time() - cpu
        note = check_faulted(faulted, server.stats(), len(samples), args.max_attempts)
        results.append(("pipeline, 10% 429 + 5% 500", summary.counters["stored"], wall, cpu, note))
        fault_rate = summary.counters["stored"] / wall

        cap = args.seed_fault_cap
        cpu = time.process_time()
        wall, done = asyncio.run(
            seed_loop(server.base_url, requests[: args.seed_fault_samples], cap)
        )
        cpu = time.process_time() - cpu
        note = "finished" if done == args.seed_fault_samples else f"stopped at the {cap:g} s cap"
        results.append(("seed-style loop, same faults", done, wall, cpu, note))

    load = os.getloadavg()[0]
    print(f"\nconcurrency {args.concurrency}, latency {args.latency * 1000:g} ms,"
          f" ideal {ideal:.0f}/s, {os.cpu_count()} cores, load average {load:.1f}\n")  # fmt: skip
    print(f"| {'run':<32} | {'items':>6} | {'wall s':>7} | {'items/s':>8} | {'% ideal':>7} |"
          f" {'x seed':>6} | {'CPU ms/item':>11} | notes")  # fmt: skip
    print(f"|{'-' * 34}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 9}|{'-' * 8}|{'-' * 13}|------")
    for name, items, wall, cpu, note in results:
        rate = items / wall if wall else 0.0
        per_item = cpu / items * 1000 if items else 0.0
        print(f"| {name:<32} | {items:>6} | {wall:>7.2f} | {rate:>8.1f} | {rate / ideal:>7.0%} |"
              f" {rate / seed_rate:>6.1f} | {per_item:>11.2f} | {note}")  # fmt: skip
    print(f"\nfault-run rate / fault-free rate: {fault_rate / clean_rate:.0%}")


if __name__ == "__main__":
    main()
