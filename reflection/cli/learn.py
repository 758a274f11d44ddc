"""Commands that learn from the reviewers: revision pairs, reviews made elsewhere."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.revisions import REVISION_SHAPES, RevisionFilter, export_revisions
from ..reflect.settings import DIALECTS
from .common import db_option, echo_json, main, only_dataset, open_store


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


@main.group("experiment")
def experiment_group() -> None:
    """Prompt experiments: reflect one seeded spot-check with several templates, compare."""


@experiment_group.command("create")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option(
    "--name",
    help="Experiment name, shown to reviewers: keep template names out (default: experiment-sSEED).",
)
@click.option("--templates", required=True, help="Comma-separated TOML template files (two or more).")  # fmt: skip
@click.option("--size", type=int, default=100, show_default=True, help="Samples drawn.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mode", type=click.Choice(("instruction", "response", "both")), default="response", show_default=True)  # fmt: skip
@click.option("--base-url", help="Endpoint (default: $OPENAI_BASE_URL, then OpenAI).")
@click.option("--model", default="gpt-4o-mini", show_default=True, help="Oracle model.")
@click.option("--api-key", help="Key (default: $OPENAI_API_KEY). Never stored or logged.")
@click.option("--concurrency", type=int, default=16, show_default=True)
@click.option("--max-tokens", type=int, default=2048, show_default=True)
@click.option("--json-mode", is_flag=True, help="Ask for a JSON object (structured output).")
@click.option("--dialect", type=click.Choice(DIALECTS), default="openai", show_default=True, help="llama.cpp: shape replies with a GBNF grammar (the local oracle).")  # fmt: skip
def experiment_create(db, dataset, name, templates, size, seed, mode, base_url, model, api_key,
                      concurrency, max_tokens, json_mode, dialect):  # fmt: skip
    """Draw a seeded spot-check and reflect it once per template; review it blind.

    \b
    Example:
      reflection experiment create --dataset alpaca --templates a.toml,b.toml --size 100 --seed 7
      reflection experiment show experiment-s7
      reflection oracle serve --port 8080 &   # a local oracle, no key needed
      reflection experiment create --templates a.toml,b.toml --size 10 --dialect llama.cpp \\
          --base-url http://127.0.0.1:8080/v1 --model smollm2-135m-instruct --concurrency 1 \\
          --max-tokens 512
    """
    from ..reflect.settings import OracleConfig
    from ..review import experiment as ex

    paths = [Path(p.strip()) for p in templates.split(",") if p.strip()]
    name = name or f"experiment-s{seed}"  # shown to reviewers: never the template names
    config = OracleConfig.from_env(
        model=model, base_url=base_url, api_key=api_key, concurrency=concurrency,
        max_tokens=max_tokens, json_mode=json_mode, dialect=dialect,
    )  # fmt: skip
    config.validate()
    with open_store(db) as store:
        ds = dataset or only_dataset(store)
        spot = ex.create_experiment(store, ds, name, paths, size=size, seed=seed, mode=mode)
        for arm, summary in ex.reflect_arms(store, spot.id, oracle=config):
            click.echo(f"{arm}: {summary.describe()}")
    click.echo(f"Experiment {name!r}: {spot.size} samples; review them with the spot-check queue.")


@experiment_group.command("show")
@click.argument("name")
@db_option
@click.option("--difference", type=float, default=0.1, show_default=True, help="Acceptance difference the sample-size estimate is for.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def experiment_show(name, db, difference, as_json):
    """Per template: acceptance (Wilson 95 %), edit rate, IFD / r-IFD change, cost; tests.

    \b
    Example:
      reflection experiment show experiment-s7 --difference 0.05
    """
    from ..review import experiment as ex

    with open_store(db) as store:
        result = ex.report(store, name, difference=difference)
    if as_json:
        echo_json(result.as_dict())
        return
    for line in ex.report_lines(result):
        click.echo(line)


@experiment_group.command("promote")
@click.argument("name")
@db_option
@click.option("--template", help="Promote this arm (default: the most accepted one).")
@click.option("--actor", default="", help="Who promotes it (recorded).")
def experiment_promote(name, db, template, actor):
    """Make the winning template the default for later `reflect` runs (recorded).

    \b
    Example:
      reflection experiment promote experiment-s7 --actor lead
    """
    from ..review import experiment as ex

    with open_store(db) as store:
        chosen = ex.promote(store, name, template, actor=actor)
    click.echo(f"Promoted {chosen!r} from experiment {name!r}: `reflect` now uses it by default.")
