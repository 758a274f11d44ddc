"""What every command shares: the click group, the --db option, opening the store, JSON output."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from ..config import default_db_path, is_db_url
from ..errors import ReflectionError, is_disk_full, is_interrupted
from ..progress import Progress
from ..store import Store
from ..store.space import space_need


class _Group(click.Group):
    """Turns ReflectionError into one line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ReflectionError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except Exception as exc:  # Ctrl-C or a full disk, wherever it struck: not a traceback
            if is_interrupted(exc):  # Ctrl-C that stopped an SQLite statement
                raise click.Abort() from exc
            if not is_disk_full(exc):
                raise
            click.echo(f"Error: the disk filled up ({exc}); free some space and try again",
                       err=True)  # fmt: skip
            sys.exit(1)


def db_option(function):
    return click.option(
        "--db",
        default=None,
        help="SQLite database file, or postgresql://user@host:port/name"
        " (default: $REFLECTION_DB, then ./reflection.db).",
    )(function)


@contextlib.contextmanager
def open_store(db: str | Path | None) -> Iterator[Store]:
    """The store for one command. A database file the command created and left blank (a
    read-only command, or one that failed before writing) is removed again: a command never
    leaves an empty reflection.db behind. A postgresql:// URL opens PostgreSQL."""
    target = db or default_db_path()
    if is_db_url(target):
        with Store(str(target)) as store:
            yield store
        return
    path = Path(target)
    created = not path.exists()
    store = Store(path)
    try:
        yield store
    finally:
        blank = created and store.is_blank()
        store.close()
        if blank:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reflection-studio")
def main() -> None:
    """Reflection Studio: recycle instruction-tuning data with an oracle LLM and review it.

    \b
    Example:
      reflection import alpaca.json --dataset alpaca
      reflection stats
    """


def only_dataset(store: Store) -> str:
    datasets = store.datasets()
    if len(datasets) == 1:
        return datasets[0].name
    if not datasets:
        raise ReflectionError(f"{store.path} has no datasets yet; run `reflection import` first")
    names = ", ".join(d.name for d in datasets)
    raise ReflectionError(f"{store.path} has several datasets ({names}); pick one with --dataset")


def note_space(store: Store, path: Path, factors: tuple[float, float]) -> None:
    """A `Note:` on stderr when the free space looks short for importing `path` into `store`."""
    need = space_need(store, path, factors)
    note = need.note(path) if need is not None else None
    if note:
        click.echo(f"Note: {note}", err=True)


def work_progress(
    source: str | Path, *, live: bool | None = None, clock: Callable[[], float] = time.monotonic
) -> Progress:
    """An import's or export's progress on stderr: a line kept up to date on a terminal
    (`live`, by default when stderr is one), else a line every 5 s, for logs. Ten million
    records take minutes each way, silent without it."""
    live = sys.stderr.isatty() if live is None else live
    start = clock()
    last = [start]

    def show(phase: str, done: int, total: int | None) -> None:
        now = clock()
        if phase == "done":
            if live and last[0] > start:
                click.echo("", err=True)  # ends the live line
            return
        if not live and now - last[0] < 5:
            return
        last[0] = now
        if phase == "read":
            rate = done / max(now - start, 1e-6)
            line = f"{source}: {done:,} records read and checked ({rate:,.0f}/s)"
        elif phase == "publish":
            line = f"{source}: adding {done:,} records in one transaction"
        elif phase == "write":
            line = f"{source}: {done:,} of {total or done:,} samples exported"
        else:
            line = f"{source}: search index, {done:,} of about {total or done:,} rows"
        click.echo(f"\r\033[K{line}" if live else line, err=True, nl=not live, color=live or None)

    return show
