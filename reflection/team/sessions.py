"""Signed-in sessions of built-in accounts, so that a reload or a new tab stays signed in.

A sign-in starts a session: a random 256-bit token that the browser keeps (in a cookie the
app writes) and the store knows only by its SHA-256, so a copy of the database signs nobody
in. Every page run resumes the session from the token: it is refused when it is unknown (signed
out, revoked) or idle for longer than the configured idle time, and it never carries a role,
which is read from the account on every run. The password is never kept anywhere.

A session ends when its user signs out (in any tab: they share the cookie), when it sits idle,
and when its account is removed or its password is reset. A role change applies to the next
run of every session of the account, without signing it out.

Activity is written at most every `touch_seconds(idle)`, not on every run, so ten reviewers
pressing keys do not queue a write each for it; idle expiry is therefore exact to that much.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store import Account, Store

TOKEN_BYTES = 32


@dataclass(frozen=True)
class Resumed:
    """The outcome of resuming a session: the account, or why not (`expired`, `unknown`)."""

    account: Account | None
    reason: str = ""


def token_hash(token: str) -> str:
    """What the store keeps of a token: its SHA-256 (the token has 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def touch_seconds(idle_s: float) -> float:
    """How stale a session's recorded activity may get before a run writes it again."""
    return min(60.0, idle_s / 10)


def start_session(store: Store, account: str, *, clock: Callable[[], float] = time.time) -> str:
    """A new session for a signed-in account; returns its token (for the browser only)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.add_session(token_hash(token), account, clock())
    return token


def resume_session(
    store: Store, token: str, idle_s: float, *, clock: Callable[[], float] = time.time
) -> Resumed:
    """The account of a live session, its activity recorded; an idle one is ended here."""
    if not token:
        return Resumed(None, "unknown")
    hashed = token_hash(token)
    session = store.session(hashed)
    if session is None:
        return Resumed(None, "unknown")
    now = clock()
    if now - session.last_seen > idle_s:
        store.remove_sessions(token_hash=hashed)
        return Resumed(None, "expired")
    account = store.account(session.account)
    if account is None or account.kind != "password":
        store.remove_sessions(token_hash=hashed)
        return Resumed(None, "unknown")
    if now - session.last_seen > touch_seconds(idle_s):
        store.touch_session(hashed, now)
    return Resumed(account)


def end_session(store: Store, token: str) -> None:
    """Sign a session out: its token signs nobody in any more."""
    if token:
        store.remove_sessions(token_hash=token_hash(token))


def end_idle_sessions(
    store: Store, idle_s: float, *, clock: Callable[[], float] = time.time
) -> int:
    """Forget every session idle for longer than `idle_s` (they could not resume anyway)."""
    return store.remove_sessions(idle_before=clock() - idle_s)
