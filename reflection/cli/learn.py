"""Commands that learn from the reviewers: revision pairs, reviews made elsewhere."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.revisions import REVISION_SHAPES, RevisionFilter, export_revisions
from .common import db_option, main, only_dataset, open_store


def revision_options(function):
    """The options of `export --format revisions` (ignored by the other formats)."""
    options = [
        click.option("--as", "shape", type=click.Choice(REVISION_SHAPES), default="jsonl", show_default=True, help="With --format revisions: full records (jsonl) or chat shapes to fine-tune a reviser."),
        click.option("--reviewer", "reviewers", multiple=True, help="With --format revisions: only this reviewer's edits (repeatable)."),
        click.option("--since", default="", help="With --format revisions: only edits decided at or after this ISO time."),
        click.option("--until", default="", help="With --format revisions: only edits decided at or before this ISO time."),
        click.option("--min-words-changed", type=click.IntRange(min=0), default=0, help="With --format revisions: leave out edits that change fewer words (typo fixes)."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def export_revisions_command(
    out: Path, db, dataset, shape, reviewers, since, until, min_words_changed
) -> None:
    where = RevisionFilter(tuple(reviewers), since, until, min_words_changed)
    with open_store(db) as store:
        name = dataset or only_dataset(store)
        result = export_revisions(store, name, out, shape, where)
    click.echo(
        f"Wrote {result.written} revision pairs to {result.path} ({result.format};"
        f" {result.counts['edited']} edits in force)"
    )


@main.command("import-reviews")
@click.argument("path", type=click.Path(path_type=Path))
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--reviewer", default="", help="Reviewer for records that name none.")
def import_reviews_command(path, db, dataset, reviewer):
    """Import reviews made elsewhere: plain JSONL, Argilla or Label Studio exports.

    All or nothing; importing the same file twice adds nothing. See docs/import-reviews.md
    for the plain JSONL shape.

    \b
    Example:
      reflection import-reviews reviews.jsonl --dataset alpaca
      reflection import-reviews argilla_records.json
    """
    from ..ingest.reviews import import_reviews

    with open_store(db) as store:
        name = dataset or only_dataset(store)
        result = import_reviews(store, name, path, default_reviewer=reviewer)
    click.echo(
        f"Imported {result.added} reviews from {path} ({result.format}) into {name!r};"
        f" {result.skipped} already imported"
    )
