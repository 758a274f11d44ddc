"""`reflection migrate`: copy a whole store between SQLite and PostgreSQL, and prove the copy."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import db_label, is_db_url
from ..errors import StoreError
from ..store import Store
from ..store.copy import copy_store
from .common import main


@main.command("migrate")
@click.option("--from", "source", required=True, help="The store to copy: a file or a URL.")
@click.option("--to", "destination", required=True, help="A new, empty store: a file or URL.")
def migrate_command(source, destination):
    """Copy a store, every table row for row, into a new SQLite file or PostgreSQL database.

    The copy is all or nothing. Afterwards each table's row count and content digest are
    computed on both sides and printed; the command fails unless all are equal.

    \b
    Example:
      reflection migrate --from demo.db --to postgresql://reflection@127.0.0.1:5432/team
      reflection migrate --from postgresql://reflection@127.0.0.1/team --to backup.db
    """
    if not is_db_url(source) and not Path(source).is_file():
        raise StoreError(f"{source}: no such database file")
    with Store(source) as src, Store(destination) as dst:
        click.echo(f"Copying {db_label(source)} -> {db_label(destination)}")
        checks = copy_store(src, dst)
        advice = dst.memory_advice()
    width = max(len(c.table) for c in checks)
    for check in checks:
        mark = "equal" if check.equal else "DIFFERENT"
        click.echo(
            f"  {check.table:<{width}}  {check.source_rows:>10,} -> {check.destination_rows:<10,}"
            f"  {check.source_digest[:16]} {check.destination_digest[:16]}  {mark}"
        )
    different = [c.table for c in checks if not c.equal]
    if different:
        click.echo(f"Error: the copy differs in {', '.join(different)}", err=True)
        sys.exit(1)
    click.echo(f"All {len(checks)} tables equal: {sum(c.source_rows for c in checks):,} rows.")
    if advice:
        click.echo(f"Note: {advice}", err=True)
