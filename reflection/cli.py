"""The `reflection` command: parse arguments, call the library, print. Nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from .config import default_db_path
from .demo import app_path, build_demo
from .errors import ReflectionError
from .export import UNDECIDED_POLICIES, export_dataset
from .formats import FORMATS
from .ingest import import_dataset
from .store import Store


class _Group(click.Group):
    """Turns ReflectionError into one line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ReflectionError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


def db_option(function):
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="SQLite database (default: $REFLECTION_DB, then ./reflection.db).",
    )(function)


def open_store(db: Path | None) -> Store:
    return Store(db or default_db_path())


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
        result = import_dataset(
            store, path, dataset=dataset, fmt=fmt, columns=_columns(columns), split=split
        )
    click.echo(
        f"Imported {path} ({result.format}) into dataset {result.dataset!r}: "
        f"{result.added} added, {result.skipped} skipped (already present)"
        + (f", {result.flagged} flagged with an empty output" if result.flagged else "")
    )


@main.command("export")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="File to write.")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the extension.")
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
def export_command(out, db, dataset, fmt, undecided, provenance):
    """Export the curated set: accepted versions, with rejected samples left out.

    \b
    Example:
      reflection export --out curated.json
      reflection export --out train.jsonl --format openai --undecided original --provenance
    """
    with open_store(db) as store:
        name = dataset or _only_dataset(store)
        result = export_dataset(store, name, out, fmt, undecided=undecided, provenance=provenance)
    details = ", ".join(f"{k} {v}" for k, v in result.counts.items() if k != "written")
    click.echo(f"Wrote {result.written} records to {result.path} ({result.format}; {details})")


def _only_dataset(store: Store) -> str:
    datasets = store.datasets()
    if len(datasets) == 1:
        return datasets[0].name
    if not datasets:
        raise ReflectionError(f"{store.path} has no datasets yet; run `reflection import` first")
    names = ", ".join(d.name for d in datasets)
    raise ReflectionError(f"{store.path} has several datasets ({names}); pick one with --dataset")


@main.command("stats")
@db_option
@click.option("--dataset", help="Only this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats_command(db, dataset, as_json):
    """Counts of samples, candidates, scores, and reviews by decision.

    \b
    Example:
      reflection stats
      reflection stats --dataset alpaca --json
    """
    with open_store(db) as store:
        dataset_id = store.dataset(dataset).id if dataset else None
        stats = store.stats(dataset_id)
        stats["datasets"] = {d.name: d.sample_count for d in store.datasets()}
    if as_json:
        echo_json(stats)
        return
    for name, value in stats.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
            click.echo(f"{name.replace('_', ' ')}: {inner}")
        else:
            click.echo(f"{name.replace('_', ' ')}: {value}")


def _serve(db: Path, port: int | None, headless: bool) -> None:
    app = app_path()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--browser.gatherUsageStats",
        "false",
    ]
    if port:
        command += ["--server.port", str(port)]
    if headless:
        command += ["--server.headless", "true"]
    env = {**os.environ, "REFLECTION_DB": str(Path(db).resolve())}
    click.echo(f"Serving {db} with Streamlit (Ctrl+C stops)")
    sys.exit(subprocess.call(command, env=env, cwd=app.parent))


@main.command("app")
@db_option
@click.option("--port", type=int, help="Port (default: Streamlit's, 8501).")
@click.option("--headless", is_flag=True, help="Do not open a browser.")
def app_command(db, port, headless):
    """Start the review app on a database.

    \b
    Example:
      reflection app --db alpaca.db
    """
    path = db or default_db_path()
    with open_store(path):
        pass  # creates or migrates the file before the app opens it
    _serve(path, port, headless)


@main.command("demo")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("demo.db"),
    show_default=True,
    help="Where to build the demo database.",
)
@click.option("--port", type=int, help="Port (default: Streamlit's, 8501).")
@click.option("--headless", is_flag=True, help="Do not open a browser.")
@click.option("--build-only", is_flag=True, help="Build the database and exit.")
def demo_command(db, port, headless, build_only):
    """Build the demo database from data/demo (if missing) and start the app on it.

    \b
    Example:
      reflection demo --headless
    """
    if not Path(db).exists():
        summary = build_demo(db)
        click.echo(f"Built {db}: {summary}")
    if not build_only:
        _serve(db, port, headless)
