"""The browser's side of a built-in sign-in: a cookie holding the session's token.

Streamlit can read the cookies a browser sent when its session connected
(`st.context.cookies`) but offers no way to set one, so the page sets it with a tiny script
(`st.html(..., unsafe_allow_javascript=True)`, our own text only: the token is checked to be
URL-safe base64 before it is placed in a script). The cookie is a browser-session cookie
(no expiry: the server ends idle sessions), `SameSite=Strict`, and `Secure` when the page is
served over HTTPS. It is named after the database, so two apps on one host (cookies ignore
the port) keep apart.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TypeGuard

import streamlit as st

from ..config import db_key

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_FLAGS = "; Path=/; SameSite=Strict' + (location.protocol === 'https:' ? '; Secure' : '')"


def cookie_name(db: Path | str) -> str:
    """The cookie of this app's database (a short hash of its path or URL, not the path)."""
    digest = hashlib.sha256(db_key(db).encode()).hexdigest()[:12]
    return f"reflection_session_{digest}"


def valid_token(token: object) -> TypeGuard[str]:
    """Whether `token` looks like one of ours (URL-safe base64): safe to place in a script."""
    return isinstance(token, str) and bool(_TOKEN.match(token))


def read_token(db: Path | str) -> str:
    """The token the browser sent when this session connected ('' when none or malformed)."""
    token = st.context.cookies.get(cookie_name(db), "")
    return token if valid_token(token) else ""


def remember_script(db: Path | str, token: str) -> str:
    """A script that stores `token` in the browser's cookie."""
    if not valid_token(token):
        raise ValueError("not a session token")
    return f"<script>document.cookie = '{cookie_name(db)}={token}{_FLAGS};</script>"


def forget_script(db: Path | str, token: str) -> str:
    """A script that drops the cookie if it still holds `token` (another tab may hold a newer)."""
    if not valid_token(token):
        raise ValueError("not a session token")
    name = cookie_name(db)
    return (
        f"<script>if (document.cookie.split('; ').indexOf('{name}={token}') >= 0)"
        f" document.cookie = '{name}=; Max-Age=0{_FLAGS};</script>"
    )
