"""The reflection pipeline against the fault-injecting OpenAI-compatible test server.

The real `openai` client talks HTTP to tests/oracle_server.py; nothing is monkeypatched.
"""

from __future__ import annotations

import threading
import time

import pytest

from reflection.errors import ConfigError, OracleError
from reflection.records import Sample
from reflection.reflect.oracle import request_key
from reflection.reflect.pipeline import estimate_reflection, reflect_dataset
from reflection.reflect.pricing import PriceTable
from reflection.reflect.settings import OracleConfig


def _samples(records, count, *, with_input=None):
    chosen = [r for r in records if with_input is None or bool(r["input"]) == with_input]
    return [
        Sample(instruction=r["instruction"], input=r["input"], output=r["output"], position=i)
        for i, r in enumerate(chosen[:count])
    ]


@pytest.fixture
def dataset(store, alpaca_records):
    data = store.ensure_dataset("alpaca")
    store.add_samples(data.id, _samples(alpaca_records, 12))
    return data


def _config(server, **changes):
    settings = dict(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test",
                    concurrency=8, max_attempts=4, timeout=10, backoff=0.01, backoff_max=0.05)  # fmt: skip
    settings.update(changes)
    return OracleConfig(**settings)


def _by_kind(store, kind):
    return [c for cs in store.candidates_for_samples(store.sample_ids(1)).values() for c in cs
            if c.kind == kind]  # fmt: skip


def test_instruction_mode_stores_one_parsed_candidate_per_sample(store, dataset, fake_oracle):
    summary = reflect_dataset(store, "alpaca", mode="instruction", oracle=_config(fake_oracle))
    assert summary.status == "done"
    assert (summary.counters["stored"], summary.counters["ok"]) == (12, 12)
    assert fake_oracle.stats()["requests"] == 12
    candidates = _by_kind(store, "instruction")
    assert sorted(c.sample_id for c in candidates) == store.sample_ids(dataset.id)
    first = candidates[0]
    assert first.instruction.startswith("Explain thoroughly, with an example:")
    assert first.output.startswith("Here is a detailed answer")
    assert first.critique.startswith("The instruction is vague")
    assert first.raw.startswith("[Critique]") and "ref:" in first.raw
    assert (first.status, first.error, first.model) == ("ok", "", "gpt-4o-mini")
    assert first.params == {"temperature": 0.7, "max_tokens": 2048}
    assert len(first.prompt_hash) == 16 and first.run_id == summary.run_id
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    expected = PriceTable().cost("gpt-4o-mini", first.prompt_tokens, first.completion_tokens)
    assert first.cost == pytest.approx(expected) and first.cost > 0
    run = store.get_run(summary.run_id)
    assert run.status == "done" and run.counters["stored"] == 12
    assert run.settings["mode"] == "instruction" and "api_key" not in run.settings


def test_both_mode_chains_response_reflection_onto_the_instruction_candidate(
    store, dataset, fake_oracle
):
    summary = reflect_dataset(store, "alpaca", mode="both", oracle=_config(fake_oracle))
    assert summary.counters["stored"] == 24
    parents = {c.id: c for c in _by_kind(store, "instruction")}
    children = _by_kind(store, "both")
    assert len(parents) == len(children) == 12
    for child in children:
        parent = parents[child.parent_id]
        assert child.sample_id == parent.sample_id
        assert (child.instruction, child.input) == (parent.instruction, parent.input)
        assert child.output.startswith("A complete, accurate answer")


def test_compress_first_only_for_samples_with_input(store, alpaca_records, fake_oracle):
    data = store.ensure_dataset("mixed")
    samples = _samples(alpaca_records, 3, with_input=True) + _samples(
        alpaca_records, 3, with_input=False
    )
    store.add_samples(data.id, samples)
    config = _config(fake_oracle)
    reflect_dataset(store, "mixed", mode="instruction", oracle=config, compress_first=True)
    compressed = _by_kind(store, "compress")
    instructions = _by_kind(store, "instruction")
    assert len(compressed) == 3 and len(instructions) == 6
    assert all(c.output for c in compressed)  # the original answer is carried along
    compress_ids = {c.id for c in compressed}
    assert sum(1 for c in instructions if c.parent_id in compress_ids) == 3


def test_samples_are_planned_a_chunk_at_a_time(store, dataset, fake_oracle, monkeypatch):
    import reflection.reflect.pipeline as reflect

    monkeypatch.setattr(reflect, "ADMIT_CHUNK", 2)
    monkeypatch.setattr(reflect, "QUEUE_AHEAD", 0)
    reflect_dataset(store, "alpaca", mode="both", oracle=_config(fake_oracle), limit=5)
    summary = reflect_dataset(
        store, "alpaca", mode="both", oracle=_config(fake_oracle, concurrency=1)
    )
    assert summary.counters["total"] == 24 and summary.counters["skipped"] == 10
    assert summary.counters["stored"] == 14 and store.count_candidates() == 24
    assert fake_oracle.stats()["requests"] == 24


def test_rerun_skips_stored_jobs_and_sends_nothing(store, dataset, fake_oracle):
    config = _config(fake_oracle)
    reflect_dataset(store, "alpaca", mode="both", oracle=config)
    fake_oracle.reset()
    summary = reflect_dataset(store, "alpaca", mode="both", oracle=config)
    assert fake_oracle.stats()["requests"] == 0
    assert summary.counters["skipped"] == 24 and summary.counters["stored"] == 0
    assert store.count_candidates() == 24


def test_identical_requests_are_served_from_the_cache(store, alpaca_records, fake_oracle):
    for name in ("first", "copy"):
        data = store.ensure_dataset(name)
        store.add_samples(data.id, _samples(alpaca_records, 5))
    config = _config(fake_oracle)
    reflect_dataset(store, "first", mode="response", oracle=config)
    fake_oracle.reset()
    summary = reflect_dataset(store, "copy", mode="response", oracle=config)
    assert fake_oracle.stats()["requests"] == 0
    assert summary.counters["cached"] == 5 and summary.counters["cost"] == 0
    copies = [c for cs in store.candidates_for_samples(store.sample_ids(2)).values() for c in cs]
    assert len(copies) == 5 and all(c.origin["cached"] and c.cost == 0 for c in copies)
    assert all(c.status == "ok" and c.output for c in copies)


def test_429_and_500_are_retried_within_the_bound(store, dataset, fake_oracle):
    fake_oracle.configure(p429=0.3, p500=0.2, retry_after=0)
    config = _config(fake_oracle, max_attempts=8)
    summary = reflect_dataset(store, "alpaca", mode="response", oracle=config)
    stats = fake_oracle.stats()
    assert summary.counters["ok"] == 12 and store.count_candidates() == 12
    assert stats["faults"].get("429", 0) + stats["faults"].get("500", 0) > 0
    assert stats["requests"] == 12 + summary.counters["retries"] <= 12 * 8
    assert max(stats["by_ref"].values()) <= 8


def test_retry_after_is_honoured(store, dataset, fake_oracle):
    fake_oracle.configure(p429=1.0, retry_after=1)
    config = _config(fake_oracle, max_attempts=2, concurrency=12)
    started = time.monotonic()
    summary = reflect_dataset(store, "alpaca", mode="response", oracle=config)
    assert time.monotonic() - started >= 1.0  # backoff_max is 0.05 s: only the header waits
    assert summary.counters["error"] == 12
    assert fake_oracle.stats()["requests"] == 24


def test_exhausted_retries_store_an_error_that_a_rerun_replaces(store, dataset, fake_oracle):
    fake_oracle.configure(p500=1.0)
    config = _config(fake_oracle, max_attempts=3)
    summary = reflect_dataset(store, "alpaca", mode="both", oracle=config)
    assert summary.counters["error"] == 12 and summary.counters["blocked"] == 12
    assert fake_oracle.stats()["requests"] == 36
    errors = _by_kind(store, "instruction")
    assert {c.status for c in errors} == {"error"}
    assert errors[0].error == "gave up after 3 attempts: HTTP 500: The server had an error"
    fake_oracle.configure(p500=0.0)
    summary = reflect_dataset(store, "alpaca", mode="both", oracle=config)
    assert summary.counters["ok"] == 24
    assert store.count_candidates() == 24  # the error rows were replaced, not kept beside
    assert {c.status for c in _by_kind(store, "instruction")} == {"ok"}


def test_timeouts_and_dropped_connections_are_retried(store, dataset, fake_oracle):
    fake_oracle.configure(p_timeout=0.2, p_reset=0.2, hang=3)
    config = _config(fake_oracle, timeout=0.5, max_attempts=8)
    summary = reflect_dataset(store, "alpaca", mode="response", oracle=config)
    stats = fake_oracle.stats()
    assert summary.counters["ok"] == 12
    assert stats["faults"].get("timeout", 0) + stats["faults"].get("reset", 0) > 0
    assert stats["requests"] == 12 + summary.counters["retries"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("p_reset", "gave up after 2 attempts: connection failed: "),
     ("p_timeout", "gave up after 2 attempts: timed out after 0.3 s")],
)  # fmt: skip
def test_a_dropped_connection_is_not_called_a_timeout(store, dataset, fake_oracle, fault, expected):
    # openai's aiohttp transport raises its timeout error for a server that closed the
    # connection; the error a reviewer reads must say which of the two happened.
    fake_oracle.configure(**{fault: 1.0}, hang=3)
    config = _config(fake_oracle, timeout=0.3, max_attempts=2)
    reflect_dataset(store, "alpaca", mode="response", oracle=config, limit=2)
    errors = [c.error for c in _by_kind(store, "response")]
    assert len(errors) == 2 and all(e.startswith(expected) for e in errors), errors


def test_truncated_and_unparsable_replies_keep_their_raw_text(store, dataset, fake_oracle):
    fake_oracle.configure(p_truncate=0.5, p_garbage=0.5)
    summary = reflect_dataset(store, "alpaca", mode="instruction", oracle=_config(fake_oracle))
    candidates = _by_kind(store, "instruction")
    statuses = {c.status for c in candidates}
    assert statuses <= {"truncated", "failed"} and len(candidates) == 12
    assert summary.counters["truncated"] + summary.counters["failed"] == 12
    for candidate in candidates:
        assert candidate.raw
        if candidate.status == "truncated":
            assert candidate.error.startswith("reply cut off at the token limit (2048)")
            assert candidate.origin["finish_reason"] == "length"
        else:
            assert candidate.error == "no [Critique] section, [New Instruction] section, [New Answer] section"  # fmt: skip
            assert candidate.raw.startswith("I am sorry")


def test_json_mode(store, dataset, fake_oracle):
    config = _config(fake_oracle, json_mode=True)
    summary = reflect_dataset(store, "alpaca", mode="instruction", oracle=config)
    assert summary.counters["ok"] == 12
    candidate = _by_kind(store, "instruction")[0]
    assert candidate.raw.startswith("{") and candidate.params["json_mode"] is True
    assert candidate.instruction.startswith("Explain thoroughly:")


def test_a_refused_key_stops_the_run(store, dataset, fake_oracle):
    fake_oracle.configure(status=401)
    with pytest.raises(OracleError, match="HTTP 401"):
        reflect_dataset(store, "alpaca", mode="response", oracle=_config(fake_oracle))
    run = store.runs(kind="reflect")[-1]
    assert run.status == "failed" and "401" in run.error
    assert fake_oracle.stats()["requests"] <= 8  # the workers stop at the first refusal


def test_stop_event_ends_early_and_a_rerun_finishes(store, dataset, fake_oracle):
    fake_oracle.configure(latency=0.3)
    stop = threading.Event()
    config = _config(fake_oracle, concurrency=2)

    def progress(counters):  # the app's Stop button, pressed once a few are stored
        if counters["stored"] >= 2:
            stop.set()

    summary = reflect_dataset(store, "alpaca", mode="response", oracle=config, stop_event=stop,
                              progress=progress)  # fmt: skip
    assert summary.status == "stopped"
    assert 2 <= summary.counters["stored"] < 12
    assert store.get_run(summary.run_id).status == "stopped"
    summary = reflect_dataset(store, "alpaca", mode="response", oracle=_config(fake_oracle))
    assert summary.counters["stored"] + summary.counters["skipped"] == 12
    assert store.count_candidates() == 12


def test_runs_from_a_background_thread_with_its_own_store(store_target, dataset, fake_oracle):
    from reflection.store import Store

    seen, result = [], {}

    def work():
        with Store(store_target) as own:
            result["summary"] = reflect_dataset(own, "alpaca", mode="response",
                                                oracle=_config(fake_oracle), progress=seen.append)  # fmt: skip

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert result["summary"].counters["ok"] == 12
    assert seen and seen[-1]["stored"] == 12 and seen[-1]["total"] == 12
    assert {"rate", "eta_s", "cost", "error", "elapsed_s"} <= set(seen[-1])
    assert seen[-1]["run_id"] == result["summary"].run_id


def test_tokens_per_minute_limit(store, dataset, fake_oracle):
    # Each request books about its prompt plus max_tokens; 12 of them need over a second's
    # burst of a 600,000-token-a-minute limit (10,000 a second).
    config = _config(fake_oracle, tpm=600_000, max_tokens=1000, concurrency=12)
    started = time.monotonic()
    reflect_dataset(store, "alpaca", mode="response", oracle=config)
    assert time.monotonic() - started >= 0.2


def test_requests_per_minute_limit(store, dataset, fake_oracle):
    config = _config(fake_oracle, rpm=600, concurrency=12)  # 10 a second, bursts of 10
    started = time.monotonic()
    reflect_dataset(store, "alpaca", mode="response", oracle=config)
    assert time.monotonic() - started >= 0.15  # 12 requests: the last 2 wait for the bucket


def test_estimate_counts_only_work_left(store, dataset, fake_oracle):
    config = _config(fake_oracle)
    before = estimate_reflection(store, "alpaca", mode="both", oracle=config)
    assert before.requests == 24 and before.prompt_tokens > 0 and before.cost > 0
    assert before.priced and before.method
    reflect_dataset(store, "alpaca", mode="both", oracle=config, limit=5)
    after = estimate_reflection(store, "alpaca", mode="both", oracle=config)
    assert after.requests == 14
    unknown = estimate_reflection(store, "alpaca", oracle=_config(fake_oracle, model="my-llm"))
    assert unknown.cost == 0 and not unknown.priced and "unknown" in unknown.describe()


def test_sample_ids_and_limit_choose_the_work(store, dataset, fake_oracle):
    ids = store.sample_ids(dataset.id)
    config = _config(fake_oracle)
    summary = reflect_dataset(store, "alpaca", mode="response", oracle=config, sample_ids=ids[3:6])
    assert summary.counters["stored"] == 3
    assert {c.sample_id for c in _by_kind(store, "response")} == set(ids[3:6])


def test_bad_settings_are_refused(store, dataset, fake_oracle):
    with pytest.raises(ConfigError, match="unknown reflection mode"):
        reflect_dataset(store, "alpaca", mode="sideways", oracle=_config(fake_oracle))
    with pytest.raises(ConfigError, match="concurrency"):
        reflect_dataset(store, "alpaca", oracle=_config(fake_oracle, concurrency=0))
    with pytest.raises(ConfigError, match="no API key for OpenAI"):
        reflect_dataset(store, "alpaca", oracle=OracleConfig(model="gpt-4o-mini"))
    with pytest.raises(ConfigError, match="dialect"):
        reflect_dataset(store, "alpaca", oracle=_config(fake_oracle, dialect="vllm"))


def test_request_key_covers_model_messages_and_parameters():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.7}
    assert request_key(body) == request_key(dict(reversed(list(body.items()))))
    assert request_key(body) != request_key({**body, "temperature": 0.2})
    assert request_key(body) != request_key({**body, "model": "n"})


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends


def test_a_run_reads_its_samples_a_chunk_at_a_time(store):
    """reflect --limit 20000 on 1,000,000 samples held all of them (1.9 GB): the samples of a
    run are now read from the store in chunks, in source order, the limit and a selection
    applied to ids first."""
    from reflection.reflect.plan import SampleFeed, samples_of, total_steps

    ds = store.ensure_dataset("d")
    # Positions run against ids, so source order is not id order.
    store.add_samples(
        ds.id,
        [Sample(f"Task {i}.", f"input {i}" if i % 3 else "", f"A {i}.", position=-i)
         for i in range(1200)],
    )  # fmt: skip
    in_order = [s.id for s in store.samples(ds.id)]
    assert in_order != sorted(in_order)
    asked: list[int] = []
    original = store.samples

    def counting(dataset_id, ids=None):
        asked.append(len(ids) if ids is not None else -1)
        return original(dataset_id, ids)

    store.samples = counting
    feed = samples_of(store, ds, None, 1000)
    assert isinstance(feed, SampleFeed) and len(feed) == 1000 and asked == []
    assert [s.id for s in feed] == in_order[:1000]
    assert asked == [512, 488]  # never the whole dataset (-1), never more than a chunk
    chosen = samples_of(store, ds, reversed(in_order[100:700:3]), None)
    assert [s.id for s in chosen] == in_order[100:700:3]  # a selection keeps source order
    assert total_steps(feed, "both", False) == 2000
    with_input = sum(1 for s in feed if s.input)
    assert total_steps(feed, "instruction", True) == 1000 + with_input


def test_a_selection_is_put_in_source_order_without_a_set_of_its_ids():
    """`in_order` finds the wanted ids in a sorted array, a chunk of the dataset at a time:
    the same ids, in the dataset's order, as a set would give, whatever the chunk."""
    import random
    from array import array

    from reflection.reflect.plan import in_order

    rng = random.Random(7)
    every = array("q", rng.sample(range(1, 50_000), 5_000))
    wanted = [*rng.sample(list(every), 700), *rng.sample(range(50_000, 60_000), 50)]
    expected = [i for i in every if i in set(wanted)]
    for chunk in (1, 7, 4_096, 1 << 20):
        assert in_order(every, [*wanted, *wanted[:9]], chunk).tolist() == expected
    assert in_order(every, []).tolist() == [] and in_order(array("q"), wanted).tolist() == []
    assert in_order(every, array("q", every)) is every  # every sample, as named: no lookup
