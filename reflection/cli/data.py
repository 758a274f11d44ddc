"""Commands for datasets: import, export, stats (the app and the demo: cli/serve.py)."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.curated import UNDECIDED_POLICIES, export_dataset
from ..formats import FORMATS
from ..ingest.datasets import import_dataset
from ..review import spotcheck
from ..store.space import SAMPLES_NEED, disk_full_errors
from ..team.consensus import CONSENSUS_MODES
from .common import (
    db_option,
    echo_json,
    main,
    note_space,
    only_dataset,
    open_store,
    work_progress,
)
from .learn import export_revisions_command, revision_options


def _columns(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or ours not in ("instruction", "input", "output", "system", "history"):
            raise click.BadParameter(f"{pair!r}: expected FIELD=COLUMN, e.g. output=response")
        mapping[ours] = theirs
    return mapping


@main.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@db_option
@click.option("--dataset", help="Dataset name (default: the file name without extension).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Force a format.")
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Read FIELD from another column or key, e.g. --column output=response.",
)
@click.option("--split", help="Split of a `datasets` DatasetDict (default: train).")
def import_command(path, db, dataset, fmt, columns, split):
    """Import a dataset file: all of it, or nothing if any record is malformed.

    Formats: Alpaca JSON/JSONL, ShareGPT, OpenAI chat JSONL, CSV, Parquet and Hugging Face
    `datasets` folders; detected from the extension and content unless --format is given.
    Records already in the dataset (same content) are skipped.

    \b
    Example:
      reflection import alpaca_data.json --dataset alpaca
      reflection import chats.jsonl --format sharegpt
      reflection import table.csv --column instruction=prompt --column output=response
    """
    with open_store(db) as store:
        note_space(store, path, SAMPLES_NEED)
        result = import_dataset(
            store, path, dataset=dataset, fmt=fmt, columns=_columns(columns), split=split,
            progress=work_progress(path),
        )  # fmt: skip
    click.echo(
        f"Imported {path} ({result.format}) into dataset {result.dataset!r}: "
        f"{result.added} added, {result.skipped} skipped (already present)"
        + (f", {result.flagged} flagged with an empty output" if result.flagged else "")
    )


@main.command("export")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="File to write.")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--format", "fmt", type=click.Choice((*FORMATS, "revisions")), help="Default: from the extension; `revisions`: the reviewers' edits as revision pairs.")  # fmt: skip
@click.option(
    "--undecided",
    type=click.Choice(UNDECIDED_POLICIES),
    default="skip",
    show_default=True,
    help="What to do with samples nobody decided.",
)
@click.option(
    "--provenance", is_flag=True, help="Add where each record came from and who chose it."
)
@click.option("--with-scores", is_flag=True, help="Add each record's scores as fields (ifd_ppl, rifd_ppl, ...).")  # fmt: skip
@click.option("--scores-from", multiple=True, help="With --with-scores: the scorer to use where several scored a metric (repeatable).")  # fmt: skip
@click.option("--consensus", type=click.Choice(CONSENSUS_MODES), help="Where several reviewers decided a sample, what counts: the majority, a unanimous decision, or the adjudication (else unanimous). Default: the decision in force.")  # fmt: skip
@revision_options
def export_command(
    out,
    db,
    dataset,
    fmt,
    undecided,
    provenance,
    with_scores,
    scores_from,
    consensus,
    **revisions,
):
    """Export the curated set: accepted versions, with rejected samples left out.

    With --consensus, a sample whose reviewers reach no consensus counts as undecided, and
    --provenance lists every reviewer's decision.

    \b
    Example:
      reflection export --out curated.json
      reflection export --out train.jsonl --format openai --undecided original --provenance
      reflection export --out scored.json --undecided suggested --with-scores
      reflection export --out team.json --consensus majority --provenance
    """
    if fmt == "revisions":
        return export_revisions_command(out, db, dataset, **revisions)
    with open_store(db) as store:
        name = dataset or only_dataset(store)
        result = export_dataset(
            store, name, out, fmt, undecided=undecided, provenance=provenance,
            with_scores=with_scores, scores_from=scores_from, consensus=consensus, allow_empty=False,
            progress=work_progress(out),
        )  # fmt: skip
    details = ", ".join(f"{k} {v}" for k, v in result.counts.items() if k != "written")
    click.echo(f"Wrote {result.written} records to {result.path} ({result.format}; {details})")


@main.command("index")
@db_option
def index_command(db):
    """Bring the search index up to date with every sample and candidate.

    Imports do this as they finish; this catches up after one that could not (a full disk,
    an interruption). Searches find every row either way, more slowly while it lags.
    PostgreSQL's index follows every write: nothing to do there.

    \b
    Example:
      reflection index --db reflection.db
    """
    with (
        open_store(db) as store,
        disk_full_errors("indexing for search", "what was indexed so far is kept"),
    ):
        show = work_progress(store.path)
        done = store.index_search_backlog_told(show)
        show("done", done, None)
    click.echo(f"Indexed {done:,} rows for search" if done else "The search index is up to date")


@main.command("stats")
@db_option
@click.option("--dataset", help="Only this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--recount",
    is_flag=True,
    help="First recount the counts the store keeps as it writes, and correct any that differ.",
)
def stats_command(db, dataset, as_json, recount):
    """Counts of samples, candidates, scores, and reviews by decision; spot-check estimates.

    The counts come from tallies kept as rows are written. --recount checks them against
    the rows (a full scan): a count differs only after a write that bypassed the store's
    triggers, or where two PostgreSQL writers raised one flag on one sample at once.

    \b
    Example:
      reflection stats
      reflection stats --dataset alpaca --json
      reflection stats --recount
    """
    with open_store(db) as store:
        if recount:
            names = {d.id: d.name for d in store.datasets()}
            fixed = store.tally_repair()
            for row in fixed:
                where = names.get(row["dataset_id"], f"dataset {row['dataset_id']} (deleted)")
                click.echo(
                    f"recounted {row['name']} of {where}: {row['kept']} -> {row['counted']}",
                    err=as_json,
                )
            click.echo(f"recount: {len(fixed)} kept counts corrected", err=as_json)
        dataset_id = store.dataset(dataset).id if dataset else None
        stats = store.stats(dataset_id)
        stats["datasets"] = {d.name: d.sample_count for d in store.datasets()}
        stats["spotchecks"] = spotcheck.spotcheck_stats(store, dataset_id)
    if as_json:
        echo_json(stats)
        return
    spot_lines = spotcheck.stats_lines(stats.pop("spotchecks"))
    for name, value in stats.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
            click.echo(f"{name.replace('_', ' ')}: {inner}")
        else:
            click.echo(f"{name.replace('_', ' ')}: {value}")
    for name, line in spot_lines:
        click.echo(f"spot-check {name}: {line}")
