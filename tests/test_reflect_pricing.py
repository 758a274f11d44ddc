"""Prices, token counting and retry-header parsing: pure parts of the oracle side."""

from __future__ import annotations

import json

import httpx2
import pytest

from reflection.errors import InputError
from reflection.reflect.oracle import reply_from_response, retry_after
from reflection.reflect.pricing import Estimate, PriceTable, TokenCounter
from reflection.reflect.settings import OracleConfig


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("gpt-4o-mini", (0.15, 0.60)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),  # longest prefix wins over gpt-4o
        ("gpt-4o-2024-08-06", (2.50, 10.00)),
        ("openai/gpt-4.1-nano", (0.10, 0.40)),
        ("GPT-3.5-Turbo", (0.50, 1.50)),
        ("smollm2-135m-instruct", None),
    ],
)
def test_price_by_longest_prefix(model, price):
    assert PriceTable().price(model) == price


def test_cost_and_batch_discount():
    table = PriceTable()
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000, batch=True) == pytest.approx(0.375)
    assert table.cost("unknown-model", 10, 10) == 0.0


def test_price_file_overrides_and_adds(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o-mini": {"input": 1, "output": 2}, "local": {"input": 0, "output": 0}}))  # fmt: skip
    table = PriceTable.from_file(path)
    assert table.price("gpt-4o-mini") == (1.0, 2.0)
    assert table.price("local-7b") == (0.0, 0.0)
    assert table.price("gpt-4o") == (2.50, 10.00)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected an object"),
        ('{"m": {"input": 1}}', "'m': expected"),
        ("{not json", "cannot read prices"),
    ],  # fmt: skip
)
def test_price_file_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "prices.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        PriceTable.from_file(path)
    assert str(caught.value).startswith(str(path))


def test_token_counter_never_downloads_and_says_how_it_counted():
    counter = TokenCounter()
    assert counter.method.startswith(("tiktoken cl100k_base (offline)", "estimate"))
    assert counter.count("hello world") in (2, 3)
    counter.encoding, counter.method = None, "estimate: 1 token per 4 characters"
    assert counter.count("a" * 10) == 3
    assert counter.count_messages([{"role": "user", "content": "a" * 8}]) == 2 + 4 + 3


def test_estimate_describes_itself():
    text = Estimate(4, 1000, 500, 0.0125, True, "estimate: 1 token per 4 characters").describe()
    assert text == ("4 requests, about 1,000 prompt and 500 completion tokens, cost $0.0125"
                    " (token counts: estimate: 1 token per 4 characters)")  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "1.5"}, 1.5),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],  # fmt: skip
)
def test_retry_after_headers(headers, seconds):
    assert retry_after(httpx2.Headers(headers)) == seconds


def test_retry_after_http_date():
    waited = retry_after(httpx2.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert waited == 0.0  # a date in the past: go now


def test_reply_from_response_reads_usage_and_truncation():
    data = {"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7}}  # fmt: skip
    reply = reply_from_response(data, attempts=2)
    assert (reply.status, reply.text, reply.prompt_tokens, reply.completion_tokens) == ("truncated", "hi", 5, 7)  # fmt: skip
    with pytest.raises(KeyError):
        reply_from_response({"error": "nope"})


def test_settings_never_hold_the_key():
    config = OracleConfig(api_key="sk-secret", max_tokens=99)
    assert "sk-secret" not in repr(config)
    assert "sk-secret" not in json.dumps(config.settings())
    assert config.settings()["reply_limit"] == 99


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    config = OracleConfig.from_env(model="m")
    assert (config.api_key, config.base_url, config.model) == ("sk-from-env", "http://127.0.0.1:9/v1", "m")  # fmt: skip
    assert OracleConfig.from_env(api_key="explicit").api_key == "explicit"
