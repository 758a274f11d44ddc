"""Reflection Studio: recycle instruction-tuning data with an oracle LLM and review it.

The public API. The CLI (`reflection.cli`) and the Streamlit app are thin layers over it. The
records, errors and the store load at once; the stages load on first use (the reflection
pipeline imports `openai`, the student torch: seconds on a busy machine).
"""

from .errors import (
    ConfigError,
    DiskFullError,
    InputError,
    NotFoundError,
    OracleError,
    PermissionDenied,
    ReflectionError,
    SignInError,
    StoreError,
)
from .records import (
    Candidate,
    Condition,
    Dataset,
    Review,
    Run,
    Sample,
    SampleState,
    Score,
    Suggestion,
)
from .store import Store

# name -> the module (under reflection) that defines it
_LAZY = {
    "Estimate": "reflect.pricing",
    "OracleConfig": "reflect.settings",
    "PriceTable": "reflect.pricing",
    "PromptSet": "reflect.prompts",
    "RunSummary": "reflect.plan",
    "ScoringSettings": "scoring.settings",
    "adjudicate": "team.adjudicate",
    "agreement": "team.agreement",
    "assign_dataset": "team.assign",
    "compute_ifd": "scoring.ifd",
    "create_spotcheck": "review.spotcheck",
    "estimate_reflection": "reflect.estimate",
    "export_dataset": "export.curated",
    "import_candidates": "ingest.adopt",
    "import_dataset": "ingest.datasets",
    "load_prompts": "reflect.prompts",
    "load_student": "scoring.student",
    "parse_oracle_reply": "reflect.parse",
    "reassign": "team.assign",
    "reflect_dataset": "reflect.pipeline",
    "score_dataset": "scoring.compute",
    "score_drift": "scoring.runner",
    "score_judge": "scoring.judge",
    "score_student": "scoring.runner",
    "score_text": "scoring.runner",
    "scores_for_export": "scoring.fields",
    "spotcheck_queue": "review.spotcheck",
    "suggest": "select.suggestions",
    "text_stats": "scoring.text",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, "parse" if name == "parse_oracle_reply" else name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Candidate",
    "Condition",
    "ConfigError",
    "Dataset",
    "DiskFullError",
    "Estimate",
    "InputError",
    "NotFoundError",
    "OracleConfig",
    "OracleError",
    "PermissionDenied",
    "PriceTable",
    "PromptSet",
    "ReflectionError",
    "Review",
    "Run",
    "RunSummary",
    "Sample",
    "SampleState",
    "Score",
    "ScoringSettings",
    "SignInError",
    "Store",
    "StoreError",
    "Suggestion",
    "adjudicate",
    "agreement",
    "assign_dataset",
    "compute_ifd",
    "create_spotcheck",
    "estimate_reflection",
    "export_dataset",
    "import_candidates",
    "import_dataset",
    "load_prompts",
    "load_student",
    "parse_oracle_reply",
    "reassign",
    "reflect_dataset",
    "score_dataset",
    "score_drift",
    "score_judge",
    "score_student",
    "score_text",
    "scores_for_export",
    "spotcheck_queue",
    "suggest",
    "text_stats",
]
