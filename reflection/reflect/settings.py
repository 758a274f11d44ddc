"""The reflection stage's settings: one `OracleConfig`, built once by the CLI or a page.

Everything here is cheap to import (no `openai`), so a page can build and validate settings
without loading the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import api_key as resolve_api_key
from ..config import base_url as resolve_base_url
from ..errors import ConfigError

# Reflection modes: instruction, response, both (instruction then response), compress.
MODES = ("instruction", "response", "both", "compress")
# The endpoint's dialect for structured output (see `OracleConfig.dialect`).
DIALECTS = ("openai", "llama.cpp")
# Requests in flight unless told otherwise: the CLI's and the Run page's default alike.
DEFAULT_CONCURRENCY = 16


@dataclass
class OracleConfig:
    """Where the oracle is and how to talk to it. Everything but the key goes in run settings."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = DEFAULT_CONCURRENCY
    max_attempts: int = 6
    timeout: float = 120.0
    backoff: float = 0.5  # first back-off, doubled each attempt, with jitter
    backoff_max: float = 30.0
    rpm: float | None = None
    tpm: float | None = None
    temperature: float | None = 0.7
    max_tokens: int | None = 2048
    json_mode: bool = False
    # The endpoint's dialect for structured output: "openai" (OpenAI, vLLM: json_schema
    # response_format) or "llama.cpp" (json_object with a schema, and a GBNF grammar that
    # forces the tagged format when JSON mode is off).
    dialect: str = "openai"

    @classmethod
    def from_env(cls, **settings: Any) -> OracleConfig:
        """Settings as given; a key or base URL not given (or None, or empty) comes from
        $OPENAI_API_KEY / $OPENAI_BASE_URL. The CLI, the Run page and the judge build their
        settings here, so the key is resolved in one place."""
        settings["api_key"] = resolve_api_key(settings.get("api_key") or None)
        settings["base_url"] = resolve_base_url(settings.get("base_url") or None)
        return cls(**settings)

    def params(self) -> dict[str, Any]:
        """The generation parameters: part of every job key and stored on every candidate."""
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.json_mode:
            params["json_mode"] = True
        if self.dialect != "openai":
            params["dialect"] = self.dialect
        return params

    def settings(self) -> dict[str, Any]:
        """For the run record: no key, ever."""
        return {
            "model": self.model,
            "base_url": self.base_url or "",
            "concurrency": self.concurrency,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "rpm": self.rpm,
            "tpm": self.tpm,
            # Named so that the store's secret scrubber (which drops any "...token..." key)
            # keeps it.
            "reply_limit": self.max_tokens,
            **{k: v for k, v in self.params().items() if k != "max_tokens"},
        }

    def validate(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.max_attempts < 1:
            raise ConfigError(f"max attempts must be at least 1, not {self.max_attempts}")
        if not self.model.strip():
            raise ConfigError("no oracle model given (--model)")
        if not self.api_key and not self.base_url:
            raise ConfigError(
                "no API key for OpenAI: set $OPENAI_API_KEY or pass --api-key"
                " (or point --base-url at a local server, e.g. `reflection oracle serve`)"
            )
        if self.dialect not in DIALECTS:
            raise ConfigError(f"unknown dialect {self.dialect!r}; use {' or '.join(DIALECTS)}")
