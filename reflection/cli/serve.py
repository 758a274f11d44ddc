"""`reflection app` and `reflection demo`: the Streamlit server, safe by default.

- It listens on 127.0.0.1 unless --host says otherwise; another address without sign-in
  (no account in the store, no OIDC in secrets.toml) is refused unless --no-auth is given.
- Settings reach the app as environment variables, read once in the UI layer:
  REFLECTION_DB, REFLECTION_DATA_ROOTS (where typed paths may lead), REFLECTION_SESSION_IDLE.
- Streamlit's developer toolbar (Deploy, Rerun, Clear cache) is hidden: client.toolbarMode.
- Streamlit runs as a child process. SIGTERM, SIGINT and SIGHUP to this process are passed
  on, and it waits for the child to end (killing it after a grace period), so a supervisor's
  `kill PID` stops the server and frees the port. On Linux the child also gets SIGTERM if
  this process dies without a chance to pass anything on (SIGKILL).
- This process watches the database for background jobs whose server died and takes them
  over (`reflection.jobs.Supervisor`) from the start. Streamlit runs the app's script only
  when a browser connects, so a job supervisor started there would wait for the first
  reviewer: a team server restarted at night would leave a dead server's job until morning.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from .. import jobs
from ..config import default_db_path, is_db_url
from ..demo import app_path, build_demo
from ..errors import ConfigError
from ..team import accounts, oidc
from ..team.paths import ROOTS_ENV, resolve_roots
from ..team.settings import DEFAULT_IDLE_MINUTES, IDLE_ENV
from .common import db_option, main, open_store

DEFAULT_HOST = "127.0.0.1"
GRACE_S = 10.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def is_loopback(host: str) -> bool:
    """Whether an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM to the child when this process dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def supervise(command: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run the server until it ends or this process is asked to stop; 0 when asked."""
    process = subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=_die_with_parent)
    asked: list[float] = []

    def stop(signum, frame) -> None:
        if not asked:
            asked.append(time.monotonic())
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    try:
        while True:
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if asked and time.monotonic() - asked[0] > GRACE_S:
                    process.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if asked else code


def _refuse_open_server(host: str, signin: bool, no_auth: bool) -> None:
    if signin or is_loopback(host):
        return
    if not no_auth:
        raise ConfigError(
            f"refusing to serve on {host} without sign-in: add an account (reflection users "
            "add NAME --role admin), configure OIDC in .streamlit/secrets.toml, or pass --no-auth"
        )
    click.echo(
        f"Warning: serving on {host} without sign-in (--no-auth): anyone who can reach the "
        "port can decide samples, start paid runs and read or write files under the data roots.",
        err=True,
    )


def serve(
    db: Path | str,
    *,
    port: int | None = None,
    headless: bool = False,
    host: str = DEFAULT_HOST,
    no_auth: bool = False,
    data_roots: tuple[Path, ...] = (),
    idle_minutes: float | None = None,
    secrets: Path | None = None,
) -> int:
    """Start the app on `db` and return the exit status when it stops."""
    app = app_path()
    db = db if is_db_url(db) else Path(db).resolve()
    files = [secrets] if secrets else oidc.default_secrets_files(app.parent)
    if secrets and not secrets.is_file():
        raise ConfigError(f"{secrets}: no such secrets file")
    providers = oidc.providers(oidc.auth_section(files))
    with open_store(db) as store:  # also creates or migrates the file before the app opens it
        signin = accounts.sign_in_enabled(store, bool(providers))
        advice = store.memory_advice()
    if advice:
        click.echo(f"Note: {advice}", err=True)
    _refuse_open_server(host, signin, no_auth)
    roots = resolve_roots(data_roots or [Path.cwd() if isinstance(db, str) else db.parent])
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"--data-root {root}: not a folder")
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host,
        "--browser.gatherUsageStats", "false",
        # The pages draw their own sidebar navigation (ui.sidebar_navigation).
        "--client.showSidebarNavigation", "false",
        # No Deploy / Rerun / Clear cache for the people using the app.
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    if port:
        command += ["--server.port", str(port)]
    if headless:
        command += ["--server.headless", "true"]
    if secrets:
        command += ["--secrets.files", str(secrets.resolve())]
    env = {
        **os.environ,
        "REFLECTION_DB": str(db),
        ROOTS_ENV: os.pathsep.join(str(r) for r in roots),
        IDLE_ENV: f"{idle_minutes if idle_minutes is not None else DEFAULT_IDLE_MINUTES:g}",
    }
    where = f"http://{host}:{port or 8501}"
    how = "sign-in on" if signin else "no sign-in"
    click.echo(f"Serving {db} at {where} ({how}; Ctrl+C stops)")
    jobs.ensure_supervisor(db)  # taken-over jobs run in this process, the child's in its own
    try:
        return supervise(command, env, app.parent)
    finally:
        jobs.close_all()


def _server_options(function):
    options = [
        click.option("--port", type=int, help="Port (default: Streamlit's, 8501)."),
        click.option("--headless", is_flag=True, help="Do not open a browser."),
        click.option(
            "--host",
            default=DEFAULT_HOST,
            show_default=True,
            help="Address to listen on; another than 127.0.0.1 needs sign-in or --no-auth.",
        ),  # fmt: skip
        click.option(
            "--no-auth",
            is_flag=True,
            help="Serve on a non-loopback --host without sign-in (warns).",
        ),  # fmt: skip
        click.option(
            "--data-root",
            "data_roots",
            multiple=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="A folder admins may import from and export to in the app (repeatable; "
            "default: the database's folder).",
        ),  # fmt: skip
        click.option(
            "--session-idle",
            "idle_minutes",
            type=click.FloatRange(min=0, min_open=True),
            help=f"Minutes a signed-in session may sit idle (default {DEFAULT_IDLE_MINUTES:g}).",
        ),  # fmt: skip
        click.option(
            "--secrets",
            type=click.Path(dir_okay=False, path_type=Path),
            help="secrets.toml with the [auth] table for OIDC (default: Streamlit's places).",
        ),  # fmt: skip
    ]
    for option in reversed(options):
        function = option(function)
    return function


@main.command("app")
@db_option
@_server_options
def app_command(db, **options):
    """Start the review app on a database (on 127.0.0.1 unless --host is given).

    \b
    Example:
      reflection app --db alpaca.db
      reflection users add ana --role admin && reflection app --host 0.0.0.0 --headless
    """
    sys.exit(serve(db or default_db_path(), **options))


@main.command("demo")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("demo.db"),
    show_default=True,
    help="Where to build the demo database.",
)
@click.option("--build-only", is_flag=True, help="Build the database and exit.")
@_server_options
def demo_command(db, build_only, **options):
    """Build the demo database from data/demo (if missing) and start the app on it.

    \b
    Example:
      reflection demo --headless
    """
    if not Path(db).exists():
        summary = build_demo(db)
        click.echo(f"Built {db}: {summary}")
    if not build_only:
        sys.exit(serve(db, **options))
