"""A student served elsewhere: losses from an OpenAI-compatible completions endpoint that returns
prompt log-probabilities (vLLM's `prompt_logprobs`).

The sequences are built here, with the student's own tokenizer loaded locally, and sent as
token ids (`"prompt": [ids]`), so the endpoint scores exactly the tokens the definitions name
and no detokenize-retokenize round trip can shift a span. Each reply's `prompt_logprobs[p]`
maps token ids (as strings) to `{"logprob": ...}`; vLLM always includes the prompt's own token,
and the loss of a sequence is minus the mean of those over its target positions.

llama-cpp-python's `echo` log-probabilities are shifted by one token (0.3.x) and are not
accepted: a reply without `prompt_logprobs` raises ConfigError.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..config import api_key as resolve_api_key
from ..errors import ConfigError, OracleError
from .pairs import DEFAULT_MAX_LENGTH, Seq
from .student import resolve_student
from .templates import template_name


@dataclass
class EndpointStudent:
    """A student model behind a completions endpoint; the tokenizer is local."""

    base_url: str
    model: str
    tokenizer: Any  # a transformers tokenizer
    name: str
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 8
    timeout: float = 120.0
    device: str = "endpoint"

    def scorer(self, template: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
        suffix = "" if max_length == DEFAULT_MAX_LENGTH else f":{max_length}"
        return f"{self.name}@{template_name(template)}{suffix}"

    def losses(self, seqs: list[Seq], **_batching: Any) -> list[float | None]:
        """Mean target cross-entropy of each sequence, one request per sequence."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._loss, seqs))

    def _loss(self, seq: Seq) -> float | None:
        if not seq.targets:
            return None
        body = {
            "model": self.model,
            "prompt": seq.ids,
            "max_tokens": 1,
            "temperature": 0,
            "prompt_logprobs": 0,
        }
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self._auth()},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise OracleError(f"student endpoint {self.base_url}: {exc}") from exc
        try:
            found = data["choices"][0].get("prompt_logprobs")
        except (KeyError, IndexError, TypeError) as exc:
            raise OracleError(f"student endpoint {self.base_url}: malformed reply ({exc})") from exc
        if not found or len(found) != len(seq.ids):
            raise ConfigError(
                f"student endpoint {self.base_url} returned no prompt_logprobs for every prompt"
                " token: it must support vLLM's prompt_logprobs (llama.cpp's echo is off by one)"
            )
        total = 0.0
        for position in range(seq.start, len(seq.ids)):
            entry = found[position] or {}
            token = entry.get(str(seq.ids[position])) or entry.get(seq.ids[position])
            if token is None:
                raise OracleError(
                    f"student endpoint {self.base_url}: no log-probability for prompt token"
                    f" {position} (id {seq.ids[position]})"
                )
            total += token["logprob"] if isinstance(token, dict) else float(token)
        return -total / seq.targets

    def _auth(self) -> dict[str, str]:
        key = resolve_api_key(self.api_key)
        return {"Authorization": f"Bearer {key}"} if key else {}


def endpoint_student(
    base_url: str, tokenizer_spec: str = "smollm2", model: str | None = None, **options
) -> EndpointStudent:
    """An endpoint student whose tokenizer comes from a local GGUF, model folder or `smollm2`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            f"a student endpoint needs transformers for its tokenizer ({exc})"
        ) from exc

    folder, gguf_file, name = resolve_student(tokenizer_spec)
    kwargs = {"local_files_only": True, **({"gguf_file": gguf_file} if gguf_file else {})}
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    return EndpointStudent(base_url, model or name, tokenizer, name, **options)
