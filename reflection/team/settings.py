"""The team stage's settings, from the environment `reflection app` sets for the server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import is_db_url
from ..errors import ConfigError
from .paths import ROOTS_ENV, parse_roots

IDLE_ENV = "REFLECTION_SESSION_IDLE"
DEFAULT_IDLE_MINUTES = 60.0


@dataclass(frozen=True)
class TeamSettings:
    """Where typed paths may lead, and how long a signed-in session may sit idle."""

    data_roots: tuple[Path, ...]
    idle_minutes: float = DEFAULT_IDLE_MINUTES

    @classmethod
    def from_env(cls, db_path: Path | str, environ: dict[str, str] | None = None) -> TeamSettings:
        """$REFLECTION_DATA_ROOTS (default: the database's folder), $REFLECTION_SESSION_IDLE."""
        env = os.environ if environ is None else environ
        # A PostgreSQL database has no folder: then the working directory, unless configured.
        default = Path.cwd() if is_db_url(db_path) else Path(db_path).resolve().parent
        roots = parse_roots(env.get(ROOTS_ENV)) or [default]
        raw = env.get(IDLE_ENV, "").strip()
        try:
            idle = float(raw) if raw else DEFAULT_IDLE_MINUTES
        except ValueError:
            raise ConfigError(f"${IDLE_ENV}={raw!r}: expected minutes, e.g. 30") from None
        if idle <= 0:
            raise ConfigError(f"${IDLE_ENV}={raw!r}: expected a positive number of minutes")
        return cls(tuple(roots), idle)
