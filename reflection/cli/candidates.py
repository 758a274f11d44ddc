"""Commands for reviewing reflections made elsewhere: import-candidates, spotcheck, bulk."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ReflectionError
from ..formats import FORMATS
from ..ingest import adopt
from ..records import stored_id
from ..review import spotcheck
from ..store.space import CANDIDATES_NEED
from .common import (
    db_option,
    echo_json,
    main,
    note_space,
    only_dataset,
    open_store,
    work_progress,
)


def _fields(pairs: tuple[str, ...]) -> dict[str, str]:
    try:
        return adopt.parse_fields(pairs)
    except ReflectionError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("import-candidates")
@click.argument("path", type=click.Path(path_type=Path))
@db_option
@click.option("--dataset", help="Dataset the samples are in (default: the only one).")
@click.option(
    "--shape",
    type=click.Choice(adopt.SHAPES),
    help="paired, aligned, raw or pairs (default: detected from the first record).",
)
@click.option("--kind", type=click.Choice(adopt.KINDS), help="Candidate kind (default: inferred).")
@click.option(
    "--match",
    metavar="position|hash|field:NAME",
    help="How records find their samples (default: hash for paired/pairs, else position).",
)
@click.option("--model", default="", help="The model that wrote the new versions.")
@click.option("--original-model", default="", help="pairs: the model that wrote Answer1.")
@click.option("--judge", default="", help="pairs: the judge's name, stored as the scorer.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="FIELD=NAME",
    help="Read FIELD from another key, e.g. --field new_output=reflected_answer.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="aligned: force a format.")
@click.option("--split", help="Split of a `datasets` DatasetDict folder (default: train).")
def import_candidates_command(
    path, db, dataset, shape, kind, match, model, original_model, judge, fields, fmt, split
):
    """Import reflections made elsewhere as candidates to review: all records or none.

    Shapes: paired records (original and new version in one record, e.g. new_instruct /
    new_answer / better_answer), a second dataset aligned with the first (by position or
    an id field), raw oracle replies (parsed; failures kept with their raw text), and
    model-vs-model answers (Answer1 / Answer2, with judge scores). Importing the same file
    again adds nothing.

    \b
    Example:
      reflection import-candidates alpaca_reflected_intermediate.json --dataset alpaca
      reflection import-candidates recycled_alpaca.json --match position --model gpt-4
      reflection import-candidates replies.jsonl --shape raw --kind response
      reflection import-candidates vicuna_wrap_reviews.json --dataset vs --judge gpt-4
    """
    with open_store(db) as store:
        note_space(store, path, CANDIDATES_NEED)
        result = adopt.import_candidates(
            store,
            path,
            dataset=dataset,
            shape=shape,
            kind=kind,
            match=match,
            model=model,
            original_model=original_model,
            judge=judge,
            fields=_fields(fields),
            fmt=fmt,
            split=split,
            progress=work_progress(path),
        )
    click.echo(adopt.summary(result, path))


@main.group("spotcheck", cls=click.Group)
def spotcheck_group() -> None:
    """Review a seeded random sample and estimate how many bad samples the whole set holds.

    \b
    Example:
      reflection spotcheck create oracle-check --size 50 --seed 1 --stratify kind
      reflection spotcheck show oracle-check
    """


@spotcheck_group.command("create")
@click.argument("name")
@db_option
@click.option("--dataset", help="Dataset to draw from (default: the only one).")
@click.option("--size", type=int, default=50, show_default=True, help="Samples to draw.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--stratify",
    default="",
    metavar="kind|flag|score:METRIC",
    help="Draw from each stratum separately: candidate kind, flag, or a score's bucket.",
)
@click.option("--edges", help="score: bucket edges, e.g. 0.5,1.0 (default: quartiles).")
@click.option(
    "--version",
    "version",
    type=click.Choice(spotcheck.VERSIONS),
    default="original",
    show_default=True,
    help="score: bucket by the original's value or its newest candidate's.",
)
@click.option(
    "--good",
    type=click.Choice(spotcheck.GOOD),
    help="What counts as good: an accepted candidate (oracle check, the default when the"
    " dataset has candidates) or any accepted version.",
)
@click.option("--kind", "kinds", multiple=True, help="Only samples with a candidate of this kind.")
@click.option(
    "--allocation",
    type=click.Choice(spotcheck.ALLOCATIONS),
    default="proportional",
    show_default=True,
    help="How a stratified draw shares the size among strata.",
)
def spotcheck_create(
    name, db, dataset, size, seed, stratify, edges, version, good, kinds, allocation
):
    """Draw a seeded random sample as a review queue of its own.

    \b
    Example:
      reflection spotcheck create oracle-check --size 50 --seed 1
      reflection spotcheck create by-ifd --size 200 --stratify score:ifd_ppl --edges 0.5,1
    """
    try:
        cuts = [float(v) for v in edges.split(",")] if edges else None
    except ValueError:
        raise click.BadParameter(f"{edges!r}: expected numbers separated by commas") from None
    with open_store(db) as store:
        spot = spotcheck.create_spotcheck(
            store,
            dataset or only_dataset(store),
            name,
            size=size,
            seed=seed,
            stratify=stratify,
            good=good,
            kinds=tuple(kinds),
            allocation=allocation,
            edges=cuts,
            version=version,
        )
        drawn = len(store.spotcheck_sample_ids(stored_id(spot)))
    strata = ", ".join(f"{k} {v:,}" for k, v in spot.strata.items())
    click.echo(
        f"Spot-check {spot.name!r}: drew {drawn:,} of {spot.population:,} samples (seed {seed};"
        f" strata: {strata}). Review them on the Review page, then `reflection spotcheck show"
        f" {spot.name}`."
    )


@spotcheck_group.command("list")
@db_option
@click.option("--dataset", help="Only this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def spotcheck_list(db, dataset, as_json):
    """Every spot-check with its estimate.

    \b
    Example:
      reflection spotcheck list --json
    """
    with open_store(db) as store:
        dataset_id = store.dataset(dataset).id if dataset else None
        stats = spotcheck.spotcheck_stats(store, dataset_id)
    if as_json:
        echo_json(stats)
        return
    if not stats:
        click.echo("No spot-checks yet: `reflection spotcheck create NAME`.")
    for name, line in spotcheck.stats_lines(stats):
        click.echo(f"{name}: {line}")


@spotcheck_group.command("show")
@click.argument("name")
@db_option
@click.option("--dataset", help="Dataset of the spot-check, where names repeat.")
@click.option("--curve", is_flag=True, help="Also print how the estimate narrowed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def spotcheck_show(name, db, dataset, curve, as_json):
    """The acceptance rate with its 95 % interval, overall and per stratum.

    \b
    Example:
      reflection spotcheck show oracle-check --curve
    """
    with open_store(db) as store:
        result = spotcheck.report(store, name, dataset)
        frame = spotcheck.narrowing(store, name, dataset) if curve else None
    data = result.as_dict()
    if as_json:
        if frame is not None:
            data["narrowing"] = json.loads(frame.to_json(orient="records"))
        echo_json(data)
        return
    click.echo(f"{result.spotcheck.name}: {result.overall.sentence()}")
    for estimate in data["strata"]:
        click.echo(f"  {estimate['stratum']}: {estimate['summary']}")
    if frame is not None and not frame.empty:
        click.echo(frame[frame["stratum"] == "all"].to_string(index=False))


@spotcheck_group.command("queue")
@click.argument("name")
@db_option
@click.option("--dataset", help="Dataset of the spot-check, where names repeat.")
@click.option("--pending", is_flag=True, help="Only samples without a verdict yet.")
def spotcheck_queue_command(name, db, dataset, pending):
    """Print the spot-check's sample ids in review order, one a line.

    \b
    Example:
      reflection spotcheck queue oracle-check --pending
    """
    with open_store(db) as store:
        ids = spotcheck.spotcheck_queue(store, name, dataset, pending=pending)
    for sample_id in ids:
        click.echo(sample_id)


@spotcheck_group.command("delete")
@click.argument("name")
@db_option
@click.option("--dataset", help="Dataset of the spot-check, where names repeat.")
def spotcheck_delete(name, db, dataset):
    """Forget a spot-check's queue (decisions made through it stay).

    \b
    Example:
      reflection spotcheck delete oracle-check
    """
    with open_store(db) as store:
        spotcheck.delete_spotcheck(store, name, dataset)
    click.echo(f"Deleted spot-check {name!r}")


@main.command("bulk")
@click.argument("rule", required=False)
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--apply", "do_apply", is_flag=True, help="Decide the samples (default: preview).")
@click.option(
    "--undo", "undo_run", type=int, help="Take back a bulk run's decisions still in force."
)
@click.option(
    "--annotator", default="cli", show_default=True, help="Name stored with each decision."
)
def bulk_command(rule, db, dataset, do_apply, undo_run, annotator):
    """Decide many samples with one rule, as one run that can be undone as one.

    Without RULE, lists the rules. With RULE, shows how many samples it decides now and the
    first few; --apply decides them.

    \b
    Examples:
      reflection bulk
      reflection bulk accept-suggested
      reflection bulk accept-suggested --apply --annotator ana
      reflection bulk --undo 12
    """
    from ..select import bulk

    with open_store(db) as store:
        if undo_run is not None:
            click.echo(f"Undid {bulk.undo(store, undo_run, annotator)} decisions of run {undo_run}")
            return
        if rule is None:
            for name, label in bulk.PRESET_NAMES.items():
                click.echo(f"{name:<22}{label}")
            return
        if rule not in bulk.PRESET_NAMES:
            raise ReflectionError(
                f"unknown rule {rule!r}; use one of {', '.join(bulk.PRESET_NAMES)}"
            )
        chosen = bulk.PRESETS[bulk.PRESET_NAMES[rule]]
        ds = store.dataset(dataset or only_dataset(store))
        if do_apply:
            run = bulk.apply(store, ds.id, chosen, annotator)
            click.echo(
                f"Run {run.id}: decided {run.counters['reviews']} samples ({chosen.describe()})"
            )
            return
        preview = bulk.preview(store, ds.id, chosen)
        click.echo(f"{preview.count} samples: {chosen.describe()}")
        for example in preview.examples:
            click.echo(
                f"  sample {example.sample_id} ({example.kind}): {example.instruction[:70]!r}"
            )
