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

# The reflection pipeline imports `openai` (seconds on a busy machine): loaded on first use.
_LAZY = {
    "Estimate": "pricing",
    "OracleConfig": "oracle",
    "PriceTable": "pricing",
    "PromptSet": "prompts",
    "RunSummary": "reflect",
    "create_spotcheck": "spotcheck",
    "estimate_reflection": "estimate",
    "import_candidates": "adopt",
    "load_prompts": "prompts",
    "parse_oracle_reply": "parse",
    "reflect_dataset": "reflect",
    "spotcheck_queue": "spotcheck",
    "compute_ifd": "scoring.ifd",
    "load_student": "scoring.ifd",
    "score_drift": "scoring.runner",
    "score_judge": "scoring.judge",
    "score_student": "scoring.runner",
    "score_text": "scoring.runner",
    "scores_for_export": "scoring.fields",
    "suggest": "suggestions",
    "text_stats": "scoring.text",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, "parse" if name == "parse_oracle_reply" else name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Candidate",
    "ConfigError",
    "Dataset",
    "Estimate",
    "InputError",
    "NotFoundError",
    "OracleConfig",
    "OracleError",
    "PriceTable",
    "PromptSet",
    "ReflectionError",
    "Review",
    "Run",
    "RunSummary",
    "Sample",
    "SampleState",
    "Score",
    "Store",
    "StoreError",
    "Suggestion",
    "create_spotcheck",
    "estimate_reflection",
    "import_candidates",
    "load_prompts",
    "parse_oracle_reply",
    "reflect_dataset",
    "spotcheck_queue",
    "compute_ifd",
    "load_student",
    "score_drift",
    "score_judge",
    "score_student",
    "score_text",
    "scores_for_export",
    "suggest",
    "text_stats",
]
