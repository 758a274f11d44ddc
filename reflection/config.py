"""Settings from arguments and the environment."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "reflection.db"


def default_db_path() -> Path:
    """The database to use when none is given: $REFLECTION_DB, then ./reflection.db."""
    return Path(os.environ.get("REFLECTION_DB") or DEFAULT_DB)


def api_key(explicit: str | None = None) -> str | None:
    """The oracle API key: the argument, then $OPENAI_API_KEY. Never stored anywhere."""
    return explicit or os.environ.get("OPENAI_API_KEY")


def base_url(explicit: str | None = None) -> str | None:
    """The oracle base URL: the argument, then $OPENAI_BASE_URL."""
    return explicit or os.environ.get("OPENAI_BASE_URL")
