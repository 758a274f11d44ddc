"""Accounts, roles, sign-in throttling and the audit log: the library, then the CLI.

Real stores in tmp_path, real argon2 hashes; the throttle's clock is passed in, so the test
says exactly when a name may try again without waiting for it.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.errors import ConfigError, NotFoundError, PermissionDenied, SignInError
from reflection.store import Store
from reflection.team import access, accounts

pytestmark = pytest.mark.both_backends

# --- roles -------------------------------------------------------------------------------------

ADMIN_ONLY = ("import", "run", "bulk", "export", "assign", "adjudicate", "users", "paths")


@pytest.mark.parametrize(
    ("role", "may"),
    [
        ("viewer", {"read"}),
        ("reviewer", {"read", "decide"}),
        ("admin", {"read", "decide", *ADMIN_ONLY}),
        (None, {"read", "decide", *ADMIN_ONLY}),  # no sign-in: the one local user
        ("intruder", set()),  # a role the table does not know may do nothing
    ],
)
def test_the_role_table(role, may):
    assert {a for a in access.ACTIONS if access.allowed(role, a)} == may


def test_require_names_who_what_and_the_role_needed():
    access.require("reviewer", "decide")
    with pytest.raises(PermissionDenied) as caught:
        access.require("viewer", "decide", who="vic")
    assert str(caught.value) == (
        "Refused: vic (viewer) may not decide samples; that needs the role reviewer or admin."
    )
    with pytest.raises(PermissionDenied, match="needs the role admin"):
        access.require("reviewer", "export")
    with pytest.raises(ValueError, match="unknown action"):
        access.allowed("admin", "fly")


# --- accounts ----------------------------------------------------------------------------------


def test_accounts_are_added_changed_and_removed_with_an_audit_trail(store):
    accounts.add_user(store, "ana", "admin", actor="cli:root", password="correct horse")
    accounts.add_user(store, "Alice@Example.com", "reviewer", actor="cli:root", oidc=True)
    ana = store.account("ANA")  # names are one account whatever the case
    assert (ana.name, ana.role, ana.kind) == ("ana", "admin", "password")
    assert ana.password_hash.startswith("$argon2id$") and "correct horse" not in ana.password_hash
    assert "password_hash" not in repr(ana)
    assert [(a.name, a.kind) for a in store.accounts()] == [
        ("alice@example.com", "oidc"),
        ("ana", "password"),
    ]
    accounts.set_role(store, "ana", "viewer", actor="cli:root")
    accounts.reset_password(store, "ana", "battery staple", actor="cli:root")
    accounts.remove_user(store, "alice@example.com", actor="cli:root")
    assert [a.name for a in store.accounts()] == ["ana"]
    events = [(e.actor, e.action, e.target, e.detail) for e in store.audit_events()]
    assert events == [
        ("cli:root", "user_add", "ana", {"kind": "password", "role": "admin"}),
        ("cli:root", "user_add", "alice@example.com", {"kind": "oidc", "role": "reviewer"}),
        ("cli:root", "role_change", "ana", {"from": "admin", "to": "viewer"}),
        ("cli:root", "password_reset", "ana", {}),
        ("cli:root", "user_remove", "alice@example.com", {"role": "reviewer"}),
    ]


@pytest.mark.parametrize(
    ("name", "role", "options", "error", "message"),
    [
        ("ana", "owner", {"password": "long enough"}, ConfigError, "unknown role 'owner'"),
        ("two words", "viewer", {"password": "long enough"}, ConfigError, "no spaces"),
        ("ana", "viewer", {"password": "short"}, ConfigError, "at least 8 characters"),
        ("ana", "viewer", {}, ConfigError, "needs a password"),
        ("not-an-address", "viewer", {"oidc": True}, ConfigError, "e-mail address"),
    ],
)
def test_invalid_accounts_are_refused(store, name, role, options, error, message):
    with pytest.raises(error, match=message):
        accounts.add_user(store, name, role, actor="t", **options)
    assert store.accounts() == [] and store.audit_events() == []


def test_duplicates_missing_accounts_and_oidc_passwords(store):
    accounts.add_user(store, "ana", "admin", actor="t", password="long enough")
    accounts.add_user(store, "bo@example.com", "viewer", actor="t", oidc=True)
    with pytest.raises(ConfigError, match="already exists"):
        accounts.add_user(store, "Ana", "viewer", actor="t", password="long enough")
    with pytest.raises(NotFoundError, match="no account named 'zed'"):
        accounts.set_role(store, "zed", "viewer", actor="t")
    with pytest.raises(NotFoundError):
        accounts.remove_user(store, "zed", actor="t")
    with pytest.raises(ConfigError, match="signs in with OIDC"):
        accounts.reset_password(store, "bo@example.com", "long enough", actor="t")
    assert len(store.audit_events()) == 2


def test_sign_in_enabled_by_an_account_or_oidc(store):
    assert not accounts.sign_in_enabled(store)
    assert accounts.sign_in_enabled(store, oidc_configured=True)
    accounts.add_user(store, "bo@example.com", "viewer", actor="t", oidc=True)
    assert accounts.sign_in_enabled(store)


# --- sign-in and throttling --------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 4), (10, 128), (11, 256), (12, 300), (50, 300)],
)
def test_block_grows_after_the_free_failures(failures, seconds):
    assert accounts.block_seconds(failures) == seconds


def test_failed_sign_ins_are_slowed_down_and_a_success_clears_them(store):
    accounts.add_user(store, "ana", "reviewer", actor="t", password="right password")
    clock = Clock()
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(SignInError, match="Wrong name or password"):
            accounts.sign_in(store, "ana", "wrong password", clock=clock)
    # Blocked for 1 s now: even the right password gets no answer.
    with pytest.raises(SignInError, match="Too many failed sign-ins for ana: wait 1 s"):
        accounts.sign_in(store, "ana", "right password", clock=clock)
    clock.now += 1.5
    with pytest.raises(SignInError, match="Wrong name or password"):
        accounts.sign_in(store, "ana", "wrong again", clock=clock)
    with pytest.raises(SignInError, match="wait 2 s"):
        accounts.sign_in(store, "ana", "right password", clock=clock)
    assert store.signin_failures("ana").failures == 4
    clock.now += 2.5
    assert accounts.sign_in(store, "ANA ", "right password", clock=clock).name == "ana"
    assert store.signin_failures("ana") is None
    actions = [(e.action, e.detail.get("reason")) for e in store.audit_events()][1:]
    assert actions == [
        *[("signin_failed", "password")] * 3,
        ("signin_failed", "throttled"),
        ("signin_failed", "password"),
        ("signin_failed", "throttled"),
        ("signin", None),
    ]


def test_unknown_names_are_counted_too_and_answer_alike(store):
    clock = Clock()
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(SignInError, match="^Wrong name or password.$"):
            accounts.sign_in(store, "ghost", "any password", clock=clock)
    with pytest.raises(SignInError, match="Too many failed sign-ins for ghost"):
        accounts.sign_in(store, "ghost", "any password", clock=clock)
    with pytest.raises(SignInError, match="Enter your name and password"):
        accounts.sign_in(store, "", "", clock=clock)


def test_the_throttle_is_shared_by_every_connection_to_the_store(tmp_path):
    # Kept in the store: a new browser session or a second app process starts no fresh count.
    path = tmp_path / "shared.db"
    clock = Clock()
    with Store(path) as first:
        accounts.add_user(first, "ana", "viewer", actor="t", password="right password")
        for _ in range(accounts.FREE_FAILURES):
            with pytest.raises(SignInError):
                accounts.sign_in(first, "ana", "nope nope", clock=clock)
    with Store(path) as second, pytest.raises(SignInError, match="Too many"):
        accounts.sign_in(second, "ana", "right password", clock=clock)


def test_oidc_accounts_sign_in_by_address_and_only_with_a_role(store):
    accounts.add_user(store, "alice@example.com", "reviewer", actor="t", oidc=True)
    accounts.add_user(store, "ana", "admin", actor="t", password="right password")
    assert accounts.sign_in_oidc(store, "Alice@Example.COM").role == "reviewer"
    with pytest.raises(SignInError, match="mallory@example.com: no role in this app"):
        accounts.sign_in_oidc(store, "mallory@example.com")
    with pytest.raises(SignInError, match="no role"):  # a password account's name is no e-mail
        accounts.sign_in_oidc(store, "ana")
    with pytest.raises(SignInError, match="gave no e-mail address"):
        accounts.sign_in_oidc(store, None)
    # And an OIDC account has no password to guess.
    with pytest.raises(SignInError, match="Wrong name or password"):
        accounts.sign_in(store, "alice@example.com", "anything at all")
    reasons = [(e.action, e.target, e.detail) for e in store.audit_events()][2:]
    assert reasons[:2] == [
        ("signin", "alice@example.com", {"method": "oidc"}),
        ("signin_failed", "mallory@example.com", {"reason": "no role"}),
    ]


# --- the CLI -----------------------------------------------------------------------------------


def run(db, *args, stdin: str | None = None):
    result = CliRunner().invoke(main, [*args, "--db", str(db)], input=stdin)
    return result.exit_code, result.output


def test_users_and_audit_commands(tmp_path):
    db = tmp_path / "team.db"
    assert run(db, "users", "add", "ana", "--role", "admin", stdin="s3cret pass\n") == (
        0,
        "Added ana (admin, signs in with a password)\n",
    )
    code, out = run(db, "users", "add", "alice@example.com", "--role", "reviewer", "--oidc")
    assert code == 0 and "signs in with OIDC" in out
    assert run(db, "users", "set-role", "ana", "viewer") == (0, "ana is now viewer\n")
    assert run(db, "users", "reset-password", "ana", stdin="new s3cret\n")[0] == 0
    code, out = run(db, "users", "list", "--json")
    listed = json.loads(out)
    assert [(u["name"], u["role"], u["kind"]) for u in listed] == [
        ("alice@example.com", "reviewer", "oidc"),
        ("ana", "viewer", "password"),
    ]
    assert "s3cret" not in out and "argon2" not in out
    with Store(db) as store:
        assert accounts.sign_in(store, "ana", "new s3cret").name == "ana"
        with pytest.raises(SignInError):
            accounts.sign_in(store, "ana", "s3cret pass")
    assert run(db, "users", "remove", "alice@example.com") == (0, "Removed alice@example.com\n")

    code, out = run(db, "audit")
    actions = [line.split("  ")[2] for line in out.splitlines()]
    assert code == 0
    assert actions == [
        "user_add", "user_add", "role_change", "password_reset", "signin", "signin_failed",
        "user_remove",
    ]  # fmt: skip
    code, out = run(db, "audit", "--json", "--action", "role_change")
    [event] = json.loads(out)
    assert (event["actor"].startswith("cli"), event["target"], event["detail"]) == (
        True,
        "ana",
        {"from": "admin", "to": "viewer"},
    )


def test_cli_errors_are_one_line(tmp_path):
    db = tmp_path / "team.db"
    code, out = run(db, "users", "add", "ana", "--role", "admin", stdin="short\n")
    assert (code, out) == (1, "Error: a password needs at least 8 characters\n")
    code, out = run(db, "users", "add", "ana", "--role", "admin", stdin="")
    assert code == 2 and "no password on stdin" in out
    code, out = run(db, "users", "set-role", "zed", "admin")
    assert code == 1 and "no account named 'zed'" in out
    code, out = run(db, "users", "add", "ana", "--role", "owner", stdin="long enough\n")
    assert code == 2 and "'owner' is not one of" in out
    assert run(db, "users", "list") == (
        0,
        "No accounts: sign-in is off unless OIDC is configured.\n",
    )
    assert run(db, "audit") == (0, "No audit events.\n")
