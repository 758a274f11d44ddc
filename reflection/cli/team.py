"""Commands for a team: accounts (`users ...`) and the audit log (`audit`)."""

from __future__ import annotations

import dataclasses
import getpass
import sys

import click

from ..team import accounts
from ..team.access import ROLES
from .common import db_option, echo_json, main, open_store


def _actor() -> str:
    """Who runs the command, as the audit log names them: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (a bare container)
        return "cli"


def _password(name: str) -> str:
    """The password: prompted twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return click.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError("no password on stdin: pipe one line, e.g. from a secret file")
    return line.rstrip("\r\n")


@main.group("users")
def users_group() -> None:
    """Accounts that may sign in to the app, and their roles (viewer, reviewer, admin).

    Sign-in is on as soon as one account exists (or OIDC is configured in
    .streamlit/secrets.toml), on any address.

    \b
    Example:
      reflection users add ana --role admin          # asks for the password
      printf '%s\\n' "$PASSWORD" | reflection users add bo --role reviewer
      reflection users add alice@example.com --role reviewer --oidc
    """


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--oidc", is_flag=True, help="NAME is an e-mail address that signs in with OIDC.")
@db_option
def users_add(name, role, oidc, db):
    """Add an account; a built-in one reads its password from stdin (prompted on a terminal).

    \b
    Example:
      reflection users add ana --role admin
      printf '%s\\n' "$PASSWORD" | reflection users add bo --role reviewer
      reflection users add alice@example.com --role viewer --oidc
    """
    password = None if oidc else _password(name)
    with open_store(db) as store:
        account = accounts.add_user(store, name, role, actor=_actor(), password=password, oidc=oidc)
    how = "signs in with OIDC" if oidc else "signs in with a password"
    click.echo(f"Added {account.name} ({account.role}, {how})")


@users_group.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def users_list(db, as_json):
    """The accounts, their roles and how they sign in (never their passwords).

    \b
    Example:
      reflection users list --json
    """
    with open_store(db) as store:
        listed = store.accounts()
    rows = [
        {"name": a.name, "role": a.role, "kind": a.kind, "created_at": a.created_at} for a in listed
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No accounts: sign-in is off unless OIDC is configured.")
    for row in rows:
        click.echo(f"{row['name']}\t{row['role']}\t{row['kind']}\t{row['created_at'][:19]}")


@users_group.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@db_option
def users_set_role(name, role, db):
    """Give an account another role (it applies on the account's next click).

    \b
    Example:
      reflection users set-role bo admin
    """
    with open_store(db) as store:
        account = accounts.set_role(store, name, role, actor=_actor())
    click.echo(f"{account.name} is now {account.role}")


@users_group.command("reset-password")
@click.argument("name")
@db_option
def users_reset_password(name, db):
    """A new password for a built-in account, from stdin (prompted on a terminal).

    \b
    Example:
      reflection users reset-password bo
    """
    password = _password(name)
    with open_store(db) as store:
        account = accounts.reset_password(store, name, password, actor=_actor())
    click.echo(f"New password set for {account.name}")


@users_group.command("remove")
@click.argument("name")
@db_option
def users_remove(name, db):
    """Remove an account (its past decisions stay under its name); signs it out at once.

    \b
    Example:
      reflection users remove bo
    """
    with open_store(db) as store:
        accounts.remove_user(store, name, actor=_actor())
    click.echo(f"Removed {name}")


@main.command("audit")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--action", help="Only this action, e.g. signin_failed or role_change.")
@click.option("--actor", help="Only what this account (or cli:USER) did.")
@click.option("--limit", type=int, help="Only the newest N events.")
def audit_command(db, as_json, action, actor, limit):
    """Who did what and when: sign-ins, failed sign-ins, accounts, roles, assignments,
    adjudications; oldest first.

    \b
    Example:
      reflection audit
      reflection audit --action signin_failed --limit 20
      reflection audit --json
    """
    with open_store(db) as store:
        events = store.audit_events(action=action, actor=actor, limit=limit)
    if as_json:
        echo_json([dataclasses.asdict(e) for e in events])
        return
    if not events:
        click.echo("No audit events.")
    for e in events:
        detail = " ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        where = f" dataset {e.dataset_id}" if e.dataset_id is not None else ""
        click.echo(
            f"{e.created_at[:19]}  {e.actor}  {e.action}  {e.target}{where}  {detail}".rstrip()
        )
