"""Accounts, the sign-in failure counters behind the throttle, and signed-in sessions
(the policy is team.accounts and team.sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .base import INTEGRITY_ERRORS, StoreBase, now


@dataclass(frozen=True)
class Account:
    """A person who may sign in: a built-in account (`password`) or an OIDC e-mail (`oidc`)."""

    name: str
    role: str
    kind: str = "password"
    # Never shown: an argon2 hash, or None for OIDC accounts.
    password_hash: str | None = field(default=None, repr=False)
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class SignInFailures:
    """Failed sign-ins under one name since its last success, and when it may try again."""

    name: str
    failures: int
    last_failed_at: str
    blocked_until: float  # seconds since the epoch


@dataclass(frozen=True)
class SignedInSession:
    """A built-in account's session, known by its token's hash; `last_seen` in epoch seconds."""

    token_hash: str
    account: str
    created_at: str
    last_seen: float


class AccountStore(StoreBase):
    def add_account(
        self, name: str, role: str, kind: str = "password", password_hash: str | None = None
    ) -> Account:
        """A new account; ConfigError when the name (in any case) is taken."""
        stamp = now()
        try:
            with self.transaction():
                self.conn.execute(
                    "INSERT INTO accounts (name, role, kind, password_hash, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [name, role, kind, password_hash, stamp, stamp],
                )
        except INTEGRITY_ERRORS as exc:
            raise ConfigError(f"{self.path}: an account named {name!r} already exists") from exc
        return Account(name, role, kind, password_hash, stamp, stamp)

    def account(self, name: str) -> Account | None:
        """The account with this name (any case), or None."""
        row = self.query_one("SELECT * FROM accounts WHERE name = ?", [name])
        return Account(**row) if row else None

    def accounts(self) -> list[Account]:
        return [Account(**row) for row in self.query("SELECT * FROM accounts ORDER BY name")]

    def has_accounts(self) -> bool:
        return bool(self.scalar("SELECT EXISTS (SELECT 1 FROM accounts)"))

    def update_account(
        self, name: str, *, role: str | None = None, password_hash: str | None = None
    ) -> bool:
        """Change an account's role and/or password hash; False when there is no such account."""
        sets, params = ["updated_at = ?"], [now()]
        if role is not None:
            sets.append("role = ?")
            params.append(role)
        if password_hash is not None:
            sets.append("password_hash = ?")
            params.append(password_hash)
        with self.transaction():
            cursor = self.conn.execute(
                f"UPDATE accounts SET {', '.join(sets)} WHERE name = ?", [*params, name]
            )
        return cursor.rowcount > 0

    def remove_account(self, name: str) -> bool:
        with self.transaction():
            cursor = self.conn.execute("DELETE FROM accounts WHERE name = ?", [name])
            self.conn.execute("DELETE FROM signin_failures WHERE name = ?", [name])
            self.conn.execute("DELETE FROM sessions WHERE account = ?", [name])
        return cursor.rowcount > 0

    def signin_failures(self, name: str) -> SignInFailures | None:
        row = self.query_one("SELECT * FROM signin_failures WHERE name = ?", [name])
        return SignInFailures(**row) if row else None

    def record_signin_failure(self, name: str, failures: int, blocked_until: float) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO signin_failures (name, failures, last_failed_at, blocked_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " failures = excluded.failures, last_failed_at = excluded.last_failed_at,"
                " blocked_until = excluded.blocked_until",
                [name, failures, now(), blocked_until],
            )

    def clear_signin_failures(self, name: str) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM signin_failures WHERE name = ?", [name])

    def add_session(self, token_hash: str, account: str, last_seen: float) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO sessions (token_hash, account, created_at, last_seen)"
                " VALUES (?, ?, ?, ?)",
                [token_hash, account, now(), last_seen],
            )

    def session(self, token_hash: str) -> SignedInSession | None:
        row = self.query_one("SELECT * FROM sessions WHERE token_hash = ?", [token_hash])
        return SignedInSession(**row) if row else None

    def touch_session(self, token_hash: str, last_seen: float) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", [last_seen, token_hash]
            )

    def remove_sessions(
        self, *, token_hash: str | None = None, account: str | None = None, idle_before: float = 0
    ) -> int:
        """Forget one session, an account's sessions, or every session idle since before."""
        params: list[str | float]
        if token_hash is not None:
            where, params = "token_hash = ?", [token_hash]
        elif account is not None:
            where, params = "account = ?", [account]
        else:
            where, params = "last_seen < ?", [idle_before]
        with self.transaction():
            cursor = self.conn.execute(f"DELETE FROM sessions WHERE {where}", params)
        return cursor.rowcount
