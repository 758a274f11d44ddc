"""Commands for scores and suggestions: score, suggest."""

from __future__ import annotations

import contextlib
import sys

import click

from ..reflect.settings import DEFAULT_CONCURRENCY
from ..scoring.settings import METRICS
from ..select.rules import RULES
from .common import db_option, main, only_dataset, open_store


@main.command("score")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    required=True,
    type=click.Choice([*METRICS, "student"]),
    help="What to compute (repeatable): ifd, rifd (student model; `student` = both), text"
    " (statistics and content checks), drift (instruction similarity), relevance (answer to"
    " instruction similarity), judge (LLM ratings).",
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
@click.option("--base-url", help="judge: endpoint (default: $OPENAI_BASE_URL, then OpenAI).")  # fmt: skip
@click.option("--api-key", help="judge: key (default: $OPENAI_API_KEY). Never stored or logged.")
@click.option("--concurrency", type=int, default=DEFAULT_CONCURRENCY, show_default=True, help="judge: requests in flight.")  # fmt: skip
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
      reflection score --metric text --metric drift --metric relevance
      reflection score --metric judge --judge-model gpt-4o-mini --pairwise
    """
    from ..reflect.settings import OracleConfig
    from ..scoring.compute import score_dataset
    from ..scoring.runner import ScoreSummary
    from ..scoring.settings import ScoringSettings

    judge = None
    if "judge" in metrics:
        judge = OracleConfig.from_env(
            model=judge_model, base_url=base_url, api_key=api_key, concurrency=concurrency,
            temperature=0.0, max_tokens=256,
        )  # fmt: skip
    settings = ScoringSettings(
        metrics=tuple(metrics), student=student, template=template, max_length=max_length,
        batch_size=batch_size, device=device, limit=limit, kinds=tuple(kinds) or None,
        student_endpoint=student_endpoint, student_endpoint_model=student_endpoint_model,
        judge=judge, pairwise=pairwise,
    )  # fmt: skip
    with open_store(db) as store, contextlib.ExitStack() as bars:
        name = dataset or only_dataset(store)
        current: list = []

        def on_family(label: str, total: int) -> None:
            bars.close()  # the previous family's bar ends where the next begins
            current[:] = [bars.enter_context(click.progressbar(
                length=total, label=label, file=sys.stderr, show_pos=True))]  # fmt: skip

        results = score_dataset(
            store, name, settings, on_family=on_family, progress=lambda n: current[0].update(n)
        )
    for r in results:
        click.echo(f"{r.family}: {r.scored} scored, {r.skipped} already done ({r.scorer}, run {r.run_id})")  # fmt: skip
        if isinstance(r, ScoreSummary) and r.counters.get("flags"):
            said = ", ".join(f"{flag} {n}" for flag, n in sorted(r.counters["flags"].items()))
            click.echo(f"  flagged: {said}")


@main.command("suggest")
@db_option
@click.option("--dataset", help="Dataset name (default: the only one).")
@click.option("--rule", type=click.Choice(RULES), default="selective", show_default=True)  # fmt: skip
@click.option("--scorer", "scorers", multiple=True, help="Which scorer's values to use when several scored a metric (repeatable).")  # fmt: skip
@click.option("--where", "conditions", multiple=True, help="threshold: a condition such as ifd_ppl<1 or drift>=0.6 (repeatable, all must hold).")  # fmt: skip
@click.option("--prefer", default="both,instruction,response,original", show_default=True, help="threshold: version kinds in order of preference.")  # fmt: skip
@click.option("--otherwise", type=click.Choice(["reject", "original", "none"]), default="reject", show_default=True, help="threshold: when no version meets the conditions.")  # fmt: skip
@click.option("--percent", type=float, default=10.0, show_default=True, help="topk: the share of samples to keep.")  # fmt: skip
@click.option("--metric", help="topk: the ranking metric (default ifd_ppl); judge: the rating metric (default judge).")  # fmt: skip
@click.option("--margin", type=float, default=1.0, show_default=True, help="judge: how much better a reflection must score.")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), help="Processes that make the content checks of versions without them (default: the cores this process may use, at most 8; 1: this one).")  # fmt: skip
def suggest_command(db, dataset, rule, scorers, conditions, prefer, otherwise, percent, metric, margin, workers):  # fmt: skip
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
    from ..scoring.check_pool import default_workers
    from ..select.suggestions import describe_missing, suggest

    with open_store(db) as store:
        name = dataset or only_dataset(store)
        counts = suggest(
            store, name, rule, scorers=scorers, conditions=conditions,
            prefer=[p.strip() for p in prefer.split(",") if p.strip()], otherwise=otherwise,
            percent=percent, metric=metric, margin=margin, workers=workers or default_workers(),
        )  # fmt: skip
    missing: dict[str, int] = counts.pop("missing", {})
    flags: dict[str, int] = counts.pop("flags", {})
    checked: int = counts.pop("checked", 0)
    click.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    if checked:
        click.echo(f"content checks made on the way: {checked:,} versions")
    if flags:
        said = ", ".join(f"{flag} {n}" for flag, n in flags.items())
        click.echo(f"flags (a flagged version is never suggested): {said}")
    for line in describe_missing(missing):
        click.echo(f"note: {line}", err=True)
