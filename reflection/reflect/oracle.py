"""An async client for any OpenAI-compatible chat endpoint: retries, rate limits, request keys.

One `Oracle` per run. It keeps one `openai.AsyncOpenAI` client on openai's aiohttp transport
(or, without aiohttp, a few on its httpx transport, each with its own pool: httpx's pool
scans all its connections on every request, so 128 connections in one pool cost more CPU
than 8 pools of 16). `complete()` answers with a `Reply` that is never an exception for a
per-request failure: after a bounded number of attempts the reply has status ``error`` and
the reason. Only failures no retry can fix for *any* request (a wrong key, an unknown model)
raise `OracleError`, so a run stops instead of storing 3,000 errors.

The settings are an `OracleConfig` (settings.py); its API key lives only in memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import importlib.util
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from ..errors import OracleError
from .settings import OracleConfig

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
FATAL_STATUSES = {401, 403, 404}
POOL_SIZE = 16  # connections per client shard (httpx transport)
RETRY_AFTER_MAX = 120.0  # seconds: a longer Retry-After is more likely a bug than a plan


@dataclass
class Reply:
    """The outcome of one request after its retries."""

    status: str  # ok, truncated, error
    text: str = ""
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""
    attempts: int = 0
    response: dict | None = None  # the endpoint's JSON, for the cache


@dataclass
class Retry:
    """Try again after `delay` seconds; `error` says why."""

    delay: float
    error: str


def request_body(model: str, messages: list[dict], extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a chat completion request."""
    return {"model": model, "messages": messages, **extra}


def request_payload(body: dict[str, Any]) -> str:
    """The request body as canonical JSON: what is sent, cached and hashed."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def request_key(body: dict[str, Any] | str) -> str:
    """Hash of (model, messages, parameters): identical requests share one cache entry."""
    payload = body if isinstance(body, str) else request_payload(body)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def reply_from_response(data: dict, attempts: int = 0) -> Reply:
    """A Reply from a chat completion JSON object (live or cached); malformed ones raise."""
    choice = data["choices"][0]
    text = choice["message"].get("content") or ""
    finish = choice.get("finish_reason") or ""
    usage = data.get("usage") or {}
    return Reply(
        status="truncated" if finish == "length" else "ok",
        text=text,
        finish_reason=finish,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        attempts=attempts,
        response=data,
    )


def retry_after(headers) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, then Retry-After (seconds or date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            if divisor != 1.0:
                continue
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):  # neither seconds nor a date: ignore the header
                return None
            return max(0.0, parsed.timestamp() - time.time())
    return None


class _Bucket:
    """A token bucket refilled continuously: `rate` units a minute, bursts up to a second's."""

    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # a request larger than a burst waits for a full one
        async with self.lock:
            while True:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)


class Oracle:
    """Sends chat completions with retries; use as an async context manager."""

    def __init__(self, config: OracleConfig, *, shards: int | None = None):
        config.validate()
        self.config = config
        self.shards = shards or (1 if AIOHTTP else max(1, -(-config.concurrency // POOL_SIZE)))
        self.clients: list[openai.AsyncOpenAI] = []
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0
        self._rpm = _Bucket(config.rpm) if config.rpm else None
        self._tpm = _Bucket(config.tpm) if config.tpm else None
        self._next = 0

    async def __aenter__(self) -> Oracle:
        per_pool = max(1, -(-self.config.concurrency // self.shards))
        limits = httpx2.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        for _ in range(self.shards):
            self.clients.append(
                openai.AsyncOpenAI(
                    api_key=self.config.api_key or "no-key",
                    base_url=self.config.base_url,
                    max_retries=0,  # retries are ours: per item, with Retry-After and a bound
                    timeout=self.config.timeout,
                    http_client=_http_client(limits),
                )
            )
        return self

    async def __aexit__(self, *exc) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()

    def client(self) -> openai.AsyncOpenAI:
        self._next = (self._next + 1) % len(self.clients)
        return self.clients[self._next]

    def _delay(self, attempt: int, asked: float | None) -> float:
        if asked is not None:  # honour the server, plus a little jitter against stampedes
            return min(asked, RETRY_AFTER_MAX) * random.uniform(1.0, 1.1)
        ceiling = min(self.config.backoff_max, self.config.backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    async def complete(self, body: dict[str, Any], *, tokens: int = 0) -> Reply:
        """One chat completion, retried on 429, 5xx, timeouts and dropped connections."""
        attempt = 0
        while True:
            attempt += 1
            result = await self.attempt(body, attempt, tokens=tokens)
            if isinstance(result, Reply):
                return result
            await asyncio.sleep(result.delay)

    async def attempt(
        self, body: dict[str, Any], attempt: int, *, tokens: int = 0, payload: str | None = None
    ):
        """Try once: a final `Reply`, or a `Retry` that says how long to wait before the next.

        The pipeline waits for a `Retry` outside its concurrency limit, so a slot never idles
        through a back-off while other work is queued. `payload`, the body already encoded by
        `request_payload`, spares the SDK re-encoding (and deep-copying) it on every try.
        """
        if self._rpm:
            await self._rpm.take(1)
        if self._tpm:
            await self._tpm.take(tokens + (body.get("max_tokens") or 0))
        self.requests += 1
        asked = None
        try:
            # The client's low-level post: same auth, base URL, timeouts and error types as
            # chat.completions.create, without re-validating our own request body and
            # building a pydantic model of the reply (about a third of its CPU).
            if payload is None:
                payload = request_payload(body)
            raw = await self.client().post(
                "/chat/completions",
                content=payload.encode("utf-8"),
                options={"headers": {"Content-Type": "application/json"}},
                cast_to=httpx2.Response,
            )
            return reply_from_response(json.loads(raw.content), attempt)
        except openai.APIStatusError as exc:
            status = exc.status_code
            error = f"HTTP {status}: {_message(exc)}"
            if status in FATAL_STATUSES:
                raise OracleError(
                    f"the oracle at {self.config.base_url or 'api.openai.com'} refused"
                    f" model {self.config.model!r}: {error}"
                ) from None
            if status not in RETRY_STATUSES:
                return Reply(status="error", error=error, attempts=attempt)
            asked = retry_after(exc.response.headers)
        except openai.APITimeoutError as exc:
            dropped = _dropped_connection(exc)
            error = (f"connection failed: {dropped}" if dropped
                     else f"timed out after {self.config.timeout:g} s")  # fmt: skip
        except openai.APIConnectionError as exc:
            error = f"connection failed: {exc.__cause__ or exc}"
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            error = f"malformed response: {type(exc).__name__}: {exc}"
        if attempt >= self.config.max_attempts:
            return Reply(
                status="error", error=f"gave up after {attempt} attempts: {error}", attempts=attempt
            )
        self.retries += 1
        return Retry(self._delay(attempt - 1, asked), error)


# openai's aiohttp transport, where aiohttp is installed: about a third less CPU a request
# than its default httpx transport, which is what bounds a run at high concurrency on a small
# machine, and one pool serves any concurrency. Same errors either way (the SDK maps them).
AIOHTTP = importlib.util.find_spec("aiohttp") is not None and hasattr(
    openai, "DefaultAioHttpClient"
)


def _http_client(limits: httpx2.Limits):
    if AIOHTTP:
        return openai.DefaultAioHttpClient(limits=limits)
    return openai.DefaultAsyncHttpxClient(limits=limits)


def _dropped_connection(exc: BaseException) -> str | None:
    """What really happened when the SDK says "timeout" for a connection the server closed.

    openai's aiohttp transport maps aiohttp's ServerDisconnectedError (a server that crashed or
    closed the socket without a reply) to httpx's timeout type; the cause chain says which it
    was: a real timeout has a TimeoutError in it, a disconnect only aiohttp's own error.
    """
    cause, chain = exc.__cause__, list[BaseException]()
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__
    if any(isinstance(found, TimeoutError) for found in chain):
        return None
    for found in chain:
        if type(found).__module__.startswith("aiohttp"):
            return str(found) or type(found).__name__
    return None


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(exc.message)[:300]
