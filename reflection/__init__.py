"""Reflection Studio: recycle instruction-tuning data with an oracle LLM and review it.

The public API. The CLI (`reflection.cli`) and the Streamlit app are thin layers over it.
"""

from .errors import (
    ConfigError,
    InputError,
    NotFoundError,
    OracleError,
    ReflectionError,
    StoreError,
)
from .records import Candidate, Dataset, Review, Run, Sample, SampleState, Score, Suggestion
from .store import Store

__all__ = [
    "Candidate",
    "ConfigError",
    "Dataset",
    "InputError",
    "NotFoundError",
    "OracleError",
    "ReflectionError",
    "Review",
    "Run",
    "Sample",
    "SampleState",
    "Score",
    "Store",
    "StoreError",
    "Suggestion",
]
