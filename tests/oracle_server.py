"""A small OpenAI-compatible HTTP server for tests and benchmarks, with fault injection.

Speaks just enough of the API for the reflection pipeline: ``POST /v1/chat/completions``,
``GET /v1/models``, and the Batch API (``POST /v1/files``, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``). Control endpoints (not part of the API):
``POST /_config`` merges settings, ``GET /_stats`` returns counters, ``POST /_reset`` clears them.

It is a hand-written asyncio protocol rather than a web framework so that it can serve
hundreds of requests a second on one core of a small machine and misbehave on purpose
(reset connections, hang past the client's timeout). Run it in its own process:

    python tests/oracle_server.py --port 0 --latency 0.2

It prints ``READY http://127.0.0.1:PORT/v1`` once listening. `OracleServer` does that for you.

Every reply carries ``ref:<key>`` where key is a hash of the request's messages, so a test can
tell which stored candidate answered which request.

Faults are drawn per request, not from one stream shared by all: the n-th arrival of a request
(by its messages hash) meets `fault_for(settings, ref, n)`, a pure function of the seed, the
request and n. So which request is refused how often does not depend on the order in which
concurrent requests happen to arrive, and a test with injected faults has one outcome only.
`attempts_to_answer` says, for a request, how many tries that outcome takes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

DEFAULTS = {
    "latency": 0.0,  # seconds before each reply
    "p429": 0.0,  # share of requests answered 429 with Retry-After
    "p500": 0.0,  # share answered 500
    "p_timeout": 0.0,  # share that hang for `hang` seconds (past the client's timeout)
    "p_reset": 0.0,  # share whose connection is dropped without a reply
    "p_truncate": 0.0,  # share cut short with finish_reason "length"
    "p_garbage": 0.0,  # share answered with text no parser can use
    "retry_after": 1,  # Retry-After header of a 429, in seconds
    "status": 0,  # answer every chat request with this HTTP status (e.g. 401), if set
    "hang": 30.0,
    "seed": 1234,
    "batch_delay": 0.2,  # seconds a batch stays in_progress
    "model": "fake-oracle",
    # Crash tests: SIGKILL process `kill_pid` `kill_delay` seconds after the `kill_after`-th
    # reply answered 200, so the kill lands while the client is holding replies it has read.
    "kill_pid": 0,
    "kill_after": 0,
    "kill_delay": 0.005,
    # Recorded replies to replay: [{"contains": text, "content": reply, "finish_reason": ...,
    # "completion_tokens": n}]. A request whose prompt contains `contains` gets that reply
    # (the first such entry), whatever the format it asks for; others get a made-up one.
    "scripted": [],
}

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Error"}


def request_ref(messages) -> str:
    """The key a reply names: a hash of the request's messages."""
    payload = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


FAULTS = ("p429", "p500", "p_timeout", "p_reset", "p_truncate", "p_garbage")
_ANSWERED = (None, "truncate", "garbage")  # faults that still answer 200


def fault_for(config: dict, ref: str, arrival: int) -> str | None:
    """The fault the `arrival`-th request (1, 2, ...) with messages hash `ref` meets, or None:
    a uniform draw from a hash of (seed, ref, arrival), split by the settings' shares."""
    digest = hashlib.sha256(f"{config['seed']}:{ref}:{arrival}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    for name in FAULTS:
        draw -= config[name]
        if draw < 0:
            return name[2:] if name.startswith("p_") else name[1:]
    return None


def attempts_to_answer(config: dict, ref: str, limit: int = 1000) -> int:
    """How many tries the request with messages hash `ref` takes to be answered (HTTP 200)."""
    settings = {**DEFAULTS, **config}
    return next(n for n in range(1, limit + 1) if fault_for(settings, ref, n) in _ANSWERED)


_JUDGED = re.compile(r"\[Response\]\n(.*?)(?:\n\[The End of Pair|\n\nPlease rate)", re.S)


def fake_judgement(prompt: str, ref: str) -> str:
    """A judge's reply (reflection.scoring.judge): longer responses score higher, 2 to 9, and in
    a pairwise prompt the first pair gets one point more (a position bias to cancel)."""
    scores = [min(9, 2 + len(m.split()) // 15) for m in _JUDGED.findall(prompt)]
    if "[The Start of Pair 2]" in prompt and len(scores) == 2:
        first = min(10, scores[0] + 1)
        return f"Scores: {first} {scores[1]}\nReason: compared by length (ref:{ref})."
    return f"Score: {scores[0] if scores else 5}\nReason: rated by length (ref:{ref})."


def fake_reply(body: dict) -> str:
    """A well-formed reflection for the prompt in `body`, in the format it asks for."""
    messages = body.get("messages", [])
    ref = request_ref(messages)
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    if "instruction-tuning data" in prompt and "[Response]" in prompt:
        return fake_judgement(prompt, ref)
    topic = " ".join(
        next((m["content"] for m in messages if m.get("role") == "user"), "").split()[:8]
    )
    if body.get("response_format", {}).get("type") in ("json_schema", "json_object"):
        return json.dumps(
            {
                "critique": f"The pair is thin (ref:{ref}).",
                "instruction": f"Explain thoroughly: {topic}",
                "input": "",
                "output": f"A detailed answer about {topic}. ref:{ref}",
            }
        )
    if "[New Answer]" in prompt:
        return (
            f"[Critique]\nThe instruction is vague and the answer is short (ref:{ref}).\n[End]\n"
            f"[New Instruction]\nExplain thoroughly, with an example: {topic}\n[End]\n"
            f"[New Answer]\nHere is a detailed answer about {topic}. ref:{ref}\n[End]"
        )
    if "[Better Answer]" in prompt:
        return (
            f"[Critique]\nThe answer lacks detail (ref:{ref}).\n[End]\n"
            f"[Better Answer]\nA complete, accurate answer about {topic}. ref:{ref}\n[End]"
        )
    return f"[New Instruction]\nOne self-contained instruction about {topic}. ref:{ref}\n[End]"


class FakeOracle:
    def __init__(self, **config):
        self.config = {**DEFAULTS, **config}
        self.arrivals: Counter = Counter()  # requests by messages hash since the last (re)seed
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.reset()

    def reset(self) -> None:
        self.stats = {
            "requests": 0,
            "by_status": Counter(),
            "faults": Counter(),
            "by_ref": Counter(),  # every chat request received, by messages hash
            "ok_by_ref": Counter(),  # requests answered 200
            "ok": 0,
            "in_flight": 0,
            "max_in_flight": 0,
            "batch_lines": 0,
        }

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.config["kill_pid"], signal.SIGKILL)

    def stats_json(self) -> dict:
        stats = {k: dict(v) if isinstance(v, Counter) else v for k, v in self.stats.items()}
        return {**stats, "batches": len(self.batches), "files": len(self.files)}

    def _fault(self, ref: str) -> str | None:
        self.arrivals[ref] += 1
        return fault_for(self.config, ref, self.arrivals[ref])

    def scripted(self, body: dict) -> dict | None:
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        return next((e for e in self.config["scripted"] if e["contains"] in prompt), None)

    def completion(self, body: dict, fault: str | None) -> dict:
        text = fake_reply(body)
        finish = "stop"
        replay = self.scripted(body)
        if replay is not None:
            text, finish = replay["content"], replay.get("finish_reason", "stop")
        if fault == "truncate":
            text, finish = text[: len(text) // 2], "length"
        elif fault == "garbage":
            text = "I am sorry, but I would rather talk about the weather today."
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        usage = {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(text) // 4 + 1}
        if replay is not None and replay.get("completion_tokens"):
            usage["completion_tokens"] = replay["completion_tokens"]
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "id": "chatcmpl-" + request_ref(body.get("messages", [])),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.config["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": usage,
        }

    async def chat(self, conn: _Connection, body: dict) -> None:
        stats = self.stats
        stats["requests"] += 1
        ref = request_ref(body.get("messages", []))
        stats["by_ref"][ref] += 1
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            fault = self._fault(ref)
            if fault:
                stats["faults"][fault] += 1
            await asyncio.sleep(
                self.config["hang"] if fault == "timeout" else self.config["latency"]
            )
            if fault == "reset":
                conn.abort()
                return
            if self.config["status"]:
                conn.respond(self.config["status"], {"error": {"message": "refused on purpose"}})
                return
            if fault == "429":
                retry = str(self.config["retry_after"])
                error = {"error": {"message": "Rate limit reached", "type": "rate_limit"}}
                conn.respond(429, error, {"Retry-After": retry})
                return
            if fault == "500":
                conn.respond(500, {"error": {"message": "The server had an error"}})
                return
            conn.respond(200, self.completion(body, fault))
            stats["ok_by_ref"][ref] += 1
            stats["ok"] += 1
            if self.config["kill_pid"] and stats["ok"] == self.config["kill_after"]:
                asyncio.get_running_loop().call_later(self.config["kill_delay"], self._kill)
        finally:
            stats["in_flight"] -= 1

    # -- Batch API -----------------------------------------------------------------------

    def upload(self, headers: dict, raw: bytes) -> dict:
        message = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + raw
        )
        content, filename = b"", "upload.jsonl"
        for part in message.get_payload():
            if part.get_param("name", header="content-disposition") == "file":
                content = part.get_payload(decode=True)
                filename = part.get_filename() or filename
        return self._add_file(filename, content, "batch")

    def _add_file(self, filename: str, content: bytes, purpose: str) -> dict:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = content
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def create_batch(self, body: dict) -> dict:
        batch_id = f"batch-{len(self.batches) + 1}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "completion_window": body.get("completion_window", "24h"),
            "created_at": int(time.time()),
            "input_file_id": body["input_file_id"],
            "status": "in_progress",
        }
        self.batches[batch_id] = batch
        asyncio.get_running_loop().call_later(
            self.config["batch_delay"], self._finish_batch, batch_id
        )
        return batch

    def _finish_batch(self, batch_id: str) -> None:
        batch = self.batches[batch_id]
        out, errors = [], []
        for line in self.files[batch["input_file_id"]].decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            self.stats["batch_lines"] += 1
            ref = request_ref(item["body"].get("messages", []))
            self.stats["by_ref"][ref] += 1
            fault = self._fault(ref)
            if fault in ("429", "500", "timeout", "reset"):
                error = {"code": "server_error", "message": f"injected {fault}"}
                errors.append({"id": "r", "custom_id": item["custom_id"], "error": error})
                continue
            response = {"status_code": 200, "body": self.completion(item["body"], fault)}
            out.append({"id": "r", "custom_id": item["custom_id"], "response": response})
        dump = "".join(json.dumps(r) + "\n" for r in out).encode()
        batch["output_file_id"] = self._add_file("out.jsonl", dump, "batch_output")["id"]
        if errors:
            dump = "".join(json.dumps(r) + "\n" for r in errors).encode()
            batch["error_file_id"] = self._add_file("err.jsonl", dump, "batch_output")["id"]
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())
        batch["request_counts"] = {
            "total": len(out) + len(errors),
            "completed": len(out),
            "failed": len(errors),
        }

    # -- routing -------------------------------------------------------------------------

    async def handle(self, conn: _Connection, method: str, path: str, headers, raw) -> None:
        if method == "POST" and path == "/v1/chat/completions":
            await self.chat(conn, json.loads(raw))
        elif method == "GET" and path == "/v1/models":
            conn.respond(200, {"object": "list", "data": [{"id": self.config["model"]}]})
        elif method == "POST" and path == "/v1/files":
            conn.respond(200, self.upload(headers, raw))
        elif method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.split("/")[3]
            if file_id not in self.files:
                conn.respond(404, {"error": {"message": f"no file {file_id}"}})
            else:
                conn.respond_bytes(200, self.files[file_id], "application/octet-stream")
        elif method == "POST" and path == "/v1/batches":
            conn.respond(200, self.create_batch(json.loads(raw)))
        elif method == "GET" and path.startswith("/v1/batches/"):
            batch = self.batches.get(path.rsplit("/", 1)[1])
            conn.respond(*((200, batch) if batch else (404, {"error": {"message": "no batch"}})))
        elif method == "POST" and path == "/_config":
            self.config.update(json.loads(raw or b"{}"))
            self.arrivals.clear()  # the same requests meet the same faults again
            conn.respond(200, self.config)
        elif method == "GET" and path == "/_stats":
            conn.respond(200, self.stats_json())
        elif method == "POST" and path == "/_reset":
            self.reset()
            conn.respond(200, {})
        else:
            conn.respond(404, {"error": {"message": f"no route {method} {path}"}})


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are handled one after another."""

    def __init__(self, oracle: FakeOracle):
        self.oracle = oracle
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.transport is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = self.buffer[end + 4 :]
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, used = _dechunk(rest)
            if body is None:
                return
        else:
            used = int(headers.get("content-length", "0"))
            if len(rest) < used:
                return
            body = rest[:used]
        self.buffer = rest[used:]
        self.busy = True
        self.close_after = headers.get("connection", "").lower() == "close"
        path = target.split("?", 1)[0]
        asyncio.ensure_future(self._run(method, path, headers, body))

    async def _run(self, method, path, headers, body) -> None:
        try:
            await self.oracle.handle(self, method, path, headers, body)
        except Exception as exc:  # a bug in a test request: answer 400, keep serving
            self.respond(400, {"error": {"message": f"{type(exc).__name__}: {exc}"}})

    def respond(self, status: int, payload, extra: dict | None = None) -> None:
        self.respond_bytes(status, json.dumps(payload).encode(), "application/json", extra)

    def respond_bytes(self, status, data: bytes, ctype: str, extra: dict | None = None) -> None:
        if self.transport is None:
            return
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"Content-Type: {ctype}", f"Content-Length: {len(data)}"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        self.busy = False
        if self.close_after:
            self.transport.close()
        else:
            self._next()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _dechunk(data: bytes) -> tuple[bytes | None, int]:
    body, pos = b"", 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None, 0
        size = int(data[pos:end].split(b";")[0], 16)
        if len(data) < end + 2 + size + 2:
            return None, 0
        body += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2
        if size == 0:
            return body, pos


async def serve(port: int, config: dict) -> None:
    oracle = FakeOracle(**config)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(oracle), "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY http://127.0.0.1:{bound}/v1", flush=True)
    async with server:
        await server.serve_forever()


class OracleServer:
    """Runs the fake oracle in a child process (its own core); a context manager."""

    def __init__(self, **config):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> OracleServer:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
            + ["--config", json.dumps(self.config)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"fake oracle did not start: {line!r}")
        self.base_url = line.split()[1]
        self.root = self.base_url.removesuffix("/v1")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.root + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def configure(self, **config) -> dict:
        return self._call("POST", "/_config", config)

    def stats(self) -> dict:
        return self._call("GET", "/_stats")

    def reset(self) -> None:
        self._call("POST", "/_reset", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=None)
    parser.add_argument("--config", default="{}", help="JSON object of settings")
    args = parser.parse_args()
    config = json.loads(args.config)
    if args.latency is not None:
        config["latency"] = args.latency
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, config))


if __name__ == "__main__":
    main()
