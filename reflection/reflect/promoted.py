"""The template set `reflect` uses when none is given: the latest one a prompt experiment
promoted (an audit event, review/experiment.promote), else the built-in prompts."""

from __future__ import annotations

from typing import Any

from ..store import Store
from .prompts import DEFAULT_PROMPTS, PromptSet, prompts_from_toml

PROMOTE_ACTION = "template.promote"


def promoted_prompts(store: Store) -> tuple[PromptSet, dict[str, Any]] | None:
    """The latest promoted template set and its audit detail (plus `name`), or None."""
    events = store.audit_events(action=PROMOTE_ACTION, limit=1)
    if not events:
        return None
    detail = events[0].detail
    return prompts_from_toml(detail["text"], detail["path"]), {**detail, "name": events[0].target}


def default_prompts(store: Store) -> PromptSet:
    found = promoted_prompts(store)
    return found[0] if found else DEFAULT_PROMPTS
