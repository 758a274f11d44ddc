"""Commands for team review: assign, reassign, progress, agreement."""

from __future__ import annotations

import getpass

import click

from ..team import agreement as agreement_stats
from ..team.assign import assign_dataset, parse_names, progress, reassign
from .common import db_option, echo_json, main, only_dataset, open_store


def _actor(function):
    return click.option(
        "--by",
        "actor",
        default=getpass.getuser,
        show_default="your login name",
        help="Who does this, for the audit log.",
    )(function)


def _echo_progress(rows: list[dict]) -> None:
    if not rows:
        click.echo("No assignments.")
        return
    width = max(len("reviewer"), *(len(row["reviewer"]) for row in rows))
    click.echo(f"{'reviewer':<{width}}  assigned  decided  skipped    open   done")
    for row in rows:
        click.echo(
            f"{row['reviewer']:<{width}}  {row['assigned']:>8,}  {row['decided']:>7,}"
            f"  {row['skipped']:>7,}  {row['open']:>6,}  {row['done']:>5.0%}"
        )


@main.command("assign")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--reviewers", required=True, help="Comma-separated reviewer names.")
@click.option("--overlap", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many reviewers decide each sample.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=0), help="Assign at most this many samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shuffle.")
@_actor
def assign_command(db, dataset, reviewers, overlap, limit, seed, actor):
    """Give each unassigned sample to OVERLAP distinct reviewers, balanced across them.

    Each reviewer's queue then holds only their assignments, and they review blind. Samples
    already assigned are left as they are, so a second run assigns the rest (or more of them
    with --limit). Prints each reviewer's progress.

    \b
    Example:
      reflection assign --dataset alpaca --reviewers ann,bob,cy --overlap 2
      reflection assign --reviewers ann,bob --limit 500 --seed 7
    """
    with open_store(db) as store:
        name = dataset or only_dataset(store)
        result = assign_dataset(
            store, name, parse_names(reviewers), overlap, limit=limit, seed=seed, actor=actor
        )
        click.echo(
            f"Assigned {result.samples:,} samples of {result.dataset!r} "
            f"({result.assignments:,} assignments, overlap {overlap})"
        )
        _echo_progress(progress(store, name))


@main.command("reassign")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--from", "reviewer", required=True, help="The reviewer whose open work moves.")
@click.option("--to", "to", required=True, help="Comma-separated reviewers who take it over.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the tie-breaks.")
@_actor
def reassign_command(db, dataset, reviewer, to, seed, actor):
    """Move a reviewer's open work (assigned, not yet decided) to other reviewers.

    What they decided stays theirs; no sample gains a reviewer.

    \b
    Example:
      reflection reassign --dataset alpaca --from bob --to ann,cy
    """
    with open_store(db) as store:
        name = dataset or only_dataset(store)
        result = reassign(store, name, reviewer, parse_names(to), seed=seed, actor=actor)
        spread = ", ".join(f"{k} {v:,}" for k, v in result.to.items())
        click.echo(f"Moved {result.moved:,} open samples from {reviewer} ({spread})")
        if result.unplaced:
            click.echo(
                f"{result.unplaced:,} stay with {reviewer}: every reviewer named already has them"
            )
        _echo_progress(progress(store, name))


@main.command("progress")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def progress_command(db, dataset, as_json):
    """Each reviewer's assigned, decided, skipped and open samples.

    \b
    Example:
      reflection progress --dataset alpaca
    """
    with open_store(db) as store:
        rows = progress(store, dataset or only_dataset(store))
    if as_json:
        echo_json(rows)
    else:
        _echo_progress(rows)


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(interval: list[float] | None) -> str:
    return "" if interval is None else f"  (95% CI {interval[0]:.3f} to {interval[1]:.3f})"


@main.command("agreement")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=agreement_stats.BOOTSTRAP,
              show_default=True, help="Bootstrap resamples for the 95% intervals.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def agreement_command(db, dataset, as_json, bootstrap, seed):
    """How much reviewers agree, on the samples two or more of them decided.

    Percent agreement, Cohen's kappa per pair of reviewers, Fleiss' kappa and Krippendorff's
    alpha with bootstrap 95% intervals, each reviewer against the consensus. Categories: the
    original accepted, a candidate accepted (which one counts), edited, rejected; skips do
    not count.

    \b
    Example:
      reflection agreement --dataset alpaca
      reflection agreement --json
    """
    with open_store(db) as store:
        name = dataset or only_dataset(store)
        result = agreement_stats.agreement(store, name, bootstrap=bootstrap, seed=seed)
    if as_json:
        echo_json(result.to_dict())
        return
    if not result.n_items:
        click.echo(f"No sample of {name!r} was decided by two or more reviewers yet.")
        return
    percent = "n/a" if result.percent is None else f"{result.percent:.1%}"
    click.echo(f"{result.n_items:,} samples decided by 2+ of {result.n_reviewers} reviewers")
    click.echo(f"percent agreement: {percent}")
    click.echo(
        f"Fleiss' kappa: {_number(result.fleiss_kappa)}{_ci(result.fleiss_kappa_ci)}"
        f"  on {result.fleiss_n_items:,} samples"
    )
    click.echo(
        f"Krippendorff's alpha: {_number(result.krippendorff_alpha)}"
        f"{_ci(result.krippendorff_alpha_ci)}"
    )
    for pair in result.cohen_kappa:
        click.echo(f"Cohen's kappa {pair['a']} / {pair['b']}: {_number(pair['kappa'])}"
                   f"  on {pair['n']:,} samples")  # fmt: skip
    for reviewer, table in result.confusion.items():
        click.echo(f"{reviewer} against the consensus: {table['agree']:,} of {table['n']:,} agree")
