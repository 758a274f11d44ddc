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


def cache_dir() -> Path | None:
    """Where derived files are kept between runs (a dequantized student): $REFLECTION_CACHE,
    then $XDG_CACHE_HOME/reflection-studio, then ~/.cache/reflection-studio. None when
    REFLECTION_CACHE is `off` (or 0, false, no)."""
    explicit = os.environ.get("REFLECTION_CACHE", "").strip()
    if explicit.lower() in ("off", "0", "false", "no"):
        return None
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reflection-studio"
