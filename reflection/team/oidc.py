"""OIDC settings as Streamlit reads them: the `[auth]` table of `.streamlit/secrets.toml`.

`reflection app` reads the same files before it starts the server (to know whether sign-in
is configured); the app reads them through `st.secrets`. Both ask `providers`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# What makes a table an OIDC provider for st.login.
_PROVIDER_KEYS = ("client_id", "server_metadata_url")


def providers(auth: Mapping[str, Any] | None) -> list[str | None]:
    """The providers `st.login` can use: None for a provider given in `[auth]` itself, then
    the names of `[auth.NAME]` tables; empty when OIDC is not configured."""
    if not auth:
        return []
    found: list[str | None] = []
    if all(key in auth for key in _PROVIDER_KEYS):
        found.append(None)
    for name, value in auth.items():
        if isinstance(value, Mapping) and all(key in value for key in _PROVIDER_KEYS):
            found.append(str(name))
    return found


def default_secrets_files(app_dir: Path) -> list[Path]:
    """Where Streamlit looks for secrets.toml when not told: the home folder, then the app's."""
    return [Path.home() / ".streamlit" / "secrets.toml", app_dir / ".streamlit" / "secrets.toml"]


def auth_section(files: Iterable[Path]) -> dict[str, Any]:
    """The `[auth]` table of the secrets files, later files winning (as Streamlit merges them)."""
    merged: dict[str, Any] = {}
    for path in files:
        if not Path(path).is_file():
            continue
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read as TOML ({exc})") from exc
        if isinstance(data.get("auth"), dict):
            merged.update(data["auth"])
    return merged
