"""The scoring stage's settings: which scores to compute and with what, built once and passed down.

The CLI's `reflection score` and the Run page build a `ScoringSettings`; `score_dataset` in
`compute.py` is the one place that turns it into scoring calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..reflect.settings import OracleConfig
from .pairs import DEFAULT_MAX_LENGTH
from .student import SMOLLM2

# What can be computed. `student` is shorthand for both IFD and r-IFD.
METRICS = ("text", "ifd", "rifd", "drift", "relevance", "judge")
_ALIASES = {"student": ("ifd", "rifd")}
DEFAULT_TEMPLATE = "alpaca"


@dataclass
class ScoringSettings:
    """Which scores, over which versions, with which student or judge."""

    metrics: tuple[str, ...] = ("text",)
    student: str = SMOLLM2  # a .gguf file, a model folder, or smollm2
    template: str = DEFAULT_TEMPLATE
    max_length: int = DEFAULT_MAX_LENGTH
    batch_size: int | None = None  # sequences per forward pass (default by device)
    device: str | None = None  # default: cuda when present (students), cpu (drift, relevance)
    limit: int | None = None  # only the first N samples
    kinds: tuple[str, ...] | None = None  # only candidates of these kinds
    student_endpoint: str | None = None  # a vLLM completions endpoint serving the student
    student_endpoint_model: str | None = None
    judge: OracleConfig | None = field(default=None)  # the oracle that rates (metric judge)
    pairwise: bool = False  # judge: each reflection against its original, in both orders

    def __post_init__(self) -> None:
        wanted: list[str] = []
        for metric in self.metrics:
            for name in _ALIASES.get(metric, (metric,)):
                if name not in wanted:
                    wanted.append(name)
        self.metrics = tuple(wanted)
        self.kinds = tuple(self.kinds) if self.kinds else None

    @property
    def student_families(self) -> tuple[str, ...]:
        """The student's families asked for, in their fixed order."""
        return tuple(f for f in ("ifd", "rifd") if f in self.metrics)

    def validate(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ConfigError(
                f"unknown score {unknown[0]!r}; use {', '.join(METRICS)} or student"
                if unknown
                else "no score asked for; use one of " + ", ".join(METRICS)
            )
        if self.max_length < 8:
            raise ConfigError(f"max length must be at least 8 tokens, not {self.max_length}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {self.batch_size}")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"limit must not be negative, not {self.limit}")
        if "judge" in self.metrics:
            if self.judge is None:
                raise ConfigError("the judge score needs an oracle (a judge model and endpoint)")
            self.judge.validate()

    def settings(self) -> dict[str, Any]:
        """For run records: no key, ever."""
        found: dict[str, Any] = {"metrics": list(self.metrics), "limit": self.limit}
        if self.kinds:
            found["kinds"] = list(self.kinds)
        if self.student_families:
            found.update(student=self.student, template=self.template, max_length=self.max_length)
            if self.student_endpoint:
                found["student_endpoint"] = self.student_endpoint
        if "judge" in self.metrics and self.judge is not None:
            found["judge"] = {**self.judge.settings(), "pairwise": self.pairwise}
        return found
