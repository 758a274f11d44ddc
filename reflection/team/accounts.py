"""Accounts, passwords and sign-in: built-in accounts with argon2 hashes, OIDC by e-mail.

Sign-in is on whenever the store has an account or OIDC is configured (`sign_in_enabled`).

Throttling: failed sign-ins are counted per name in the store (table `signin_failures`),
whether or not the name is an account. After `FREE_FAILURES` failures in a row, the name is
blocked for 1 s, then 2, 4, ... up to `MAX_BLOCK_S`; a blocked attempt is refused without
looking at the password, so guessing gets no answer while it waits. The count lives in the
store, not in memory, so a new browser session, a second app process or a restart does not
reset it; a success clears it. The cost: someone who knows a name can keep it blocked (at
most `MAX_BLOCK_S` per failure); an admin sees that in `reflection audit`. Every argon2 check
also costs tens of milliseconds of CPU, which bounds guessing per server thread.

Every sign-in, failed sign-in and account change is written to the audit log.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import ConfigError, NotFoundError, SignInError
from ..store import Account, Store
from .access import check_role

FREE_FAILURES = 3
MAX_BLOCK_S = 300.0
MIN_PASSWORD = 8
KINDS = ("password", "oidc")

# argon2-cffi's defaults: argon2id with RFC 9106's low-memory profile (64 MiB, 3 passes).
_HASHER = PasswordHasher()
_NAME = re.compile(r"^[\w.@+-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@functools.cache
def _dummy_hash() -> str:
    """Checked when the name is no account, so a wrong name costs as long as a wrong password."""
    return _HASHER.hash("not a password anyone has")


def hash_password(password: str) -> str:
    """An argon2id hash of the password (argon2-cffi's default parameters)."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def block_seconds(failures: int) -> float:
    """How long a name waits after `failures` failed sign-ins in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(2.0 ** (failures - FREE_FAILURES), MAX_BLOCK_S)


def sign_in_enabled(store: Store, oidc_configured: bool = False) -> bool:
    """Sign-in is on when the store has an account or OIDC is configured."""
    return oidc_configured or store.has_accounts()


def _role(role: str) -> str:
    try:
        return check_role(role)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _account(store: Store, name: str) -> Account:
    account = store.account(name)
    if account is None:
        raise NotFoundError(f"{store.path}: no account named {name!r}")
    return account


def add_user(
    store: Store,
    name: str,
    role: str,
    *,
    actor: str,
    password: str | None = None,
    oidc: bool = False,
) -> Account:
    """A new account: a built-in one with a password, or (oidc) an e-mail address."""
    name = name.strip()
    _role(role)
    if oidc:
        name = name.lower()
        if not _EMAIL.match(name):
            raise ConfigError(f"{name!r}: an OIDC account is an e-mail address")
        password_hash, kind = None, "oidc"
    else:
        if not _NAME.match(name):
            raise ConfigError(f"{name!r}: a name is 1-64 letters, digits and . _ @ + - (no spaces)")
        if password is None:
            raise ConfigError(f"{name}: a built-in account needs a password")
        password_hash, kind = hash_password(password), "password"
    with store.transaction():
        account = store.add_account(name, role, kind, password_hash)
        store.add_audit_event(actor, "user_add", name, detail={"role": role, "kind": kind})
    return account


def set_role(store: Store, name: str, role: str, *, actor: str) -> Account:
    """Give an account another role; recorded as a role change (from, to)."""
    _role(role)
    with store.transaction():
        account = _account(store, name)
        store.update_account(account.name, role=role)
        store.add_audit_event(
            actor, "role_change", account.name, detail={"from": account.role, "to": role}
        )
    return _account(store, name)


def reset_password(store: Store, name: str, password: str, *, actor: str) -> Account:
    """A new password for a built-in account; its failure count starts again."""
    password_hash = hash_password(password)
    with store.transaction():
        account = _account(store, name)
        if account.kind != "password":
            raise ConfigError(f"{account.name} signs in with OIDC: it has no password here")
        store.update_account(account.name, password_hash=password_hash)
        store.clear_signin_failures(account.name)
        store.remove_sessions(account=account.name)  # whoever knew the old one is signed out
        store.add_audit_event(actor, "password_reset", account.name)
    return _account(store, name)


def remove_user(store: Store, name: str, *, actor: str) -> None:
    """Remove an account (and end its sessions); its past decisions stay, under its name."""
    with store.transaction():
        account = _account(store, name)
        store.remove_account(account.name)
        store.add_audit_event(actor, "user_remove", account.name, detail={"role": account.role})


def sign_in(
    store: Store, name: str, password: str, *, clock: Callable[[], float] = time.time
) -> Account:
    """The built-in account if the password is right; SignInError (and a count) if not."""
    name = name.strip()[:200]
    if not name or not password:
        raise SignInError("Enter your name and password.")
    now = clock()
    record = store.signin_failures(name)
    if record and record.blocked_until > now:
        wait = max(1, round(record.blocked_until - now))
        store.add_audit_event(name, "signin_failed", name, detail={"reason": "throttled"})
        raise SignInError(
            f"Too many failed sign-ins for {name}: wait {wait} s before trying again."
        )
    account = store.account(name)
    stored = account.password_hash if account is not None and account.kind == "password" else None
    valid = False
    try:
        if stored:
            valid = _HASHER.verify(stored, password)
        else:
            _HASHER.verify(_dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        valid = False
    # Only a stored hash can be valid; naming `account` and `stored` narrows them for mypy.
    if not valid or account is None or not stored:
        failures = (record.failures if record else 0) + 1
        store.record_signin_failure(name, failures, now + block_seconds(failures))
        store.add_audit_event(
            name, "signin_failed", name, detail={"reason": "password", "failures": failures}
        )
        raise SignInError("Wrong name or password.")
    with store.transaction():
        if _HASHER.check_needs_rehash(stored):
            store.update_account(account.name, password_hash=_HASHER.hash(password))
        store.clear_signin_failures(account.name)
        store.add_audit_event(account.name, "signin", account.name, detail={"method": "password"})
    return account


def sign_in_oidc(store: Store, email: str | None) -> Account:
    """The OIDC account of an address the provider vouched for; SignInError if it has no role."""
    address = (email or "").strip().lower()
    account = store.account(address) if address else None
    if account is None or account.kind != "oidc":
        store.add_audit_event(
            address or "(no e-mail)", "signin_failed", address, detail={"reason": "no role"}
        )
        raise SignInError(
            f"{address or 'Your identity provider gave no e-mail address'}: no role in this app."
            f" An admin can give one: reflection users add {address or 'EMAIL'} --role reviewer"
            " --oidc"
        )
    store.add_audit_event(account.name, "signin", account.name, detail={"method": "oidc"})
    return account
