"""Settings from arguments and the environment."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DB = "reflection.db"
DB_URL_SCHEMES = ("postgresql://", "postgres://")


def is_db_url(target: object) -> bool:
    """Whether `target` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(DB_URL_SCHEMES)


def default_db_path() -> Path | str:
    """The database to use when none is given: $REFLECTION_DB, then ./reflection.db.
    A postgresql:// URL is returned as it is (a Path would fold its //)."""
    found = os.environ.get("REFLECTION_DB") or DEFAULT_DB
    return found if is_db_url(found) else Path(found)


def db_key(target: Path | str) -> str:
    """One spelling per database: a URL as given, a file by its resolved path."""
    return str(target) if is_db_url(target) else str(Path(target).resolve())


def redact(url: str) -> str:
    """A database URL without its password, fit for messages, pages, logs and run records."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def db_label(target: Path | str) -> str:
    """How to show a database to people: a file's path, a URL without its password."""
    return redact(str(target)) if is_db_url(target) else str(target)


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
