"""Score a dataset in the store, resumably: only versions missing a score are computed.

Each call is recorded as a `score` run; results are saved a chunk at a time, so an interrupted
run loses at most the chunk in flight and the next run picks up where it stopped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..records import CHECKS_METRIC, DRIFT_THRESHOLD, RELEVANCE_METRIC, RELEVANCE_THRESHOLD, Score
from ..store import Store
from . import drift as drift_module
from .checks import check_scores, content_checks, relevance_flags
from .forward import LossModel, Student
from .ifd import iter_ifd
from .pairs import DEFAULT_MAX_LENGTH, IfdResult, Pair
from .student import SMOLLM2, load_student
from .templates import template_name
from .text import SCORER as TEXT_SCORER
from .text import text_scores, text_stats
from .versions import ScoredVersions, Version, batches, dataset_versions

Progress = Callable[[int], None]
FAMILIES = ("ifd", "rifd", "text", "drift", "relevance", "judge")
# Each student family: the losses it needs and the metric that marks a version as done.
_STUDENT_PARTS = {"ifd": ("A_direct", "A_condition"), "rifd": ("Q_direct", "Q_condition")}
# Text's marker is two metrics: the content checks' (versions scored before the checks
# existed get them on the next run) and a statistic's (versions `suggest` checked on its way
# have the checks' row alone, and get their statistics here).
_MARKER: dict[str, str | tuple[str, ...]] = {
    "ifd": "ifd_ppl", "rifd": "rifd_ppl", "text": (CHECKS_METRIC, "words_output"),
    "drift": "drift", "relevance": RELEVANCE_METRIC,
}  # fmt: skip


@dataclass
class ScoreSummary:
    """What one scoring call did."""

    family: str
    scorer: str
    scored: int = 0
    skipped: int = 0
    run_id: int | None = None
    counters: dict[str, Any] = field(default_factory=dict)

    def run_counters(self) -> dict[str, Any]:
        """What the run record keeps."""
        return {"scored": self.scored, "skipped": self.skipped, **self.counters}


def _settings(family: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"metric": family, **settings}


def _todo(
    store: Store,
    dataset_id: int,
    family: str,
    scorer: str,
    summary: ScoreSummary,
    limit: int | None,
    kinds: Iterable[str] | None,
) -> Iterator[Version]:
    """The versions still without `family`'s marker, read a chunk of samples at a time (the
    skipped ones counted in `summary` as they pass)."""
    done = ScoredVersions(store, _MARKER[family], scorer)
    for _sample, versions in dataset_versions(
        store, dataset_id, kinds=kinds, limit=limit, done=done
    ):
        for version in versions:
            if version.key in done:
                summary.skipped += 1
            else:
                yield version


def _sending(todo: Iterable[Version], sent: deque[Version]) -> Iterator[Pair]:
    """Each version's pair, the version kept in `sent` until its result comes back."""
    for version in todo:
        sent.append(version)
        yield Pair(version.instruction, version.input, version.output)


def student_scores(
    sample_id: int, candidate_id: int | None, result: IfdResult, student: str, template: str,
    scorer: str, run_id: int | None = None, max_length: int = DEFAULT_MAX_LENGTH,
) -> list[Score]:  # fmt: skip
    """Scores for the store: every metric records the student, template and token counts."""
    base = {
        "student": student,
        "template": template,
        "max_length": max_length,
        "tokens": result.tokens,
        "truncated": result.truncated,
    }
    if result.note:
        base["note"] = result.note
    scores = []
    for metric, value in result.metrics().items():
        detail = dict(base)
        if metric in ("ifd_ppl", "rifd_ppl") and value is not None:
            detail["misaligned"] = value >= 1
        scores.append(Score(sample_id, metric, value, scorer, candidate_id, detail, run_id))
    return scores


def score_student(
    store: Store,
    dataset: str | int,
    families: Iterable[str] = ("ifd", "rifd"),
    *,
    student: str | LossModel = SMOLLM2,
    template: str = "alpaca",
    max_length: int = DEFAULT_MAX_LENGTH,
    device: str | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    kinds: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> list[ScoreSummary]:
    """IFD and/or r-IFD of every version missing them, with one student and template."""
    ds = store.dataset(dataset)
    template = template_name(template)
    families = [f for f in ("ifd", "rifd") if f in set(families)]
    if not families:
        raise ConfigError("score_student scores the families ifd and rifd")
    loaded = load_student(student, device) if isinstance(student, str) else student
    scorer = loaded.scorer(template, max_length)
    summaries = []
    for family in families:
        summary = ScoreSummary(family, scorer)
        todo = _todo(store, ds.id, family, scorer, summary, limit, kinds)
        # Versions sent to the student and not yet answered, in order (it answers in order).
        sent: deque[Version] = deque()
        settings = {"student": loaded.name, "template": template, "max_length": max_length,
                    "device": loaded.device, "scorer": scorer}  # fmt: skip
        if isinstance(loaded, Student):  # which matrix kernel computed the numbers (kernels.py)
            from .kernels import linear_kernel

            settings["linear_kernel"] = linear_kernel(loaded.model, loaded.device)
        with store.run("score", ds.id, _settings(family, settings)) as run:
            summary.run_id = run.id
            for results in iter_ifd(
                loaded, _sending(todo, sent), template, max_length=max_length,
                parts=_STUDENT_PARTS[family], batch_size=batch_size,
            ):  # fmt: skip
                scores = []
                for result in results:
                    version = sent.popleft()
                    scores += student_scores(
                        version.sample_id, version.candidate_id, result, loaded.name,
                        template, scorer, run.id, max_length,
                    )  # fmt: skip
                store.put_scores(scores)
                summary.scored += len(results)
                run.counters = summary.run_counters()  # kept current: a failure records them
                if progress:
                    progress(len(results))
            run.counters = summary.run_counters()
        summaries.append(summary)
    return summaries


def score_text(
    store: Store,
    dataset: str | int,
    *,
    limit: int | None = None,
    kinds: Iterable[str] | None = None,
    progress: Progress | None = None,
    chunk: int = 20_000,
) -> ScoreSummary:
    """Lengths and content checks (checks.py) of every version, and diff ratio and subject
    overlap of each reflected one.

    Saved `chunk` scores at a time (~12 a version, so ~1,600 versions, under a second of
    work). 500 a time made each commit (64 ms on a 1,000,000-sample store) cost more than
    the scoring: text scores for 5,000 samples took 34 s, 23 of them committing."""
    ds = store.dataset(dataset)
    done = ScoredVersions(store, _MARKER["text"], TEXT_SCORER)
    summary = ScoreSummary("text", TEXT_SCORER, counters={"scores": 0, "flags": {}})
    flagged: dict[str, int] = summary.counters["flags"]
    with store.run("score", ds.id, _settings("text", {"scorer": TEXT_SCORER})) as run:
        summary.run_id = run.id
        pending: list[Score] = []
        for sample, versions in dataset_versions(store, ds.id, kinds=kinds, limit=limit, done=done):
            original = (sample.instruction, sample.input, sample.output)
            for version in versions:
                if version.key in done:
                    summary.skipped += 1
                    continue
                stats = text_stats(
                    version.instruction, version.input, version.output,
                    None if version.candidate_id is None else original,
                )  # fmt: skip
                pending += text_scores(version.sample_id, version.candidate_id, stats, run.id)
                checks = content_checks(
                    version.output, status=version.status, reply=version.raw,
                    original_output=None if version.candidate_id is None else sample.output,
                )  # fmt: skip
                pending += check_scores(
                    version.sample_id, version.candidate_id, checks, run.id, TEXT_SCORER
                )
                for flag in checks.flags:
                    flagged[flag] = flagged.get(flag, 0) + 1
                summary.scored += 1
                summary.counters["scores"] += len(stats) + len(checks.values)
            if len(pending) >= chunk:
                store.put_scores(pending)
                pending = []
                run.counters = summary.run_counters()
            if progress:
                progress(len(versions))
        store.put_scores(pending)
        run.counters = summary.run_counters()
    return summary


def score_drift(
    store: Store,
    dataset: str | int,
    *,
    device: str = "cpu",
    limit: int | None = None,
    kinds: Iterable[str] | None = None,
    threshold: float = DRIFT_THRESHOLD,
    progress: Progress | None = None,
    chunk: int = 256,
) -> ScoreSummary:
    """Cosine similarity of each reflected instruction to its original (flag below threshold)."""
    ds = store.dataset(dataset)
    scorer = drift_module.EMBEDDER
    done = ScoredVersions(store, _MARKER["drift"], scorer)
    summary = ScoreSummary("drift", scorer)

    def todo() -> Iterator[tuple[Version, str, str]]:
        for sample, versions in dataset_versions(store, ds.id, kinds=kinds, limit=limit, done=done):
            before = drift_module.instruction_text(sample.instruction, sample.input)
            for v in versions:
                if v.candidate_id is None:
                    continue
                if v.key in done:
                    summary.skipped += 1
                    continue
                yield v, before, drift_module.instruction_text(v.instruction, v.input)

    def scores(part: list[tuple[Version, str, str]], run_id: int) -> list[Score]:
        values = drift_module.similarities([(a, b) for _, a, b in part], device)
        return [
            Score(v.sample_id, "drift", value, scorer, v.candidate_id,
                  {"drift": value < threshold, "threshold": threshold}, run_id)
            for (v, _, _), value in zip(part, values, strict=True)
        ]  # fmt: skip

    settings = _settings("drift", {"scorer": scorer, "threshold": threshold})
    return _score_in_chunks(store, ds.id, settings, summary, todo(), scores, chunk, progress)


def _score_in_chunks(store, dataset_id: int, settings: dict, summary: ScoreSummary,
                     todo: Iterable, scores, chunk: int,
                     progress: Progress | None) -> ScoreSummary:  # fmt: skip
    """One scoring run over `todo` (read lazily), `chunk` items at a time: `scores(part,
    run_id)` makes each chunk's scores, stored before the next chunk; counters and progress
    follow."""
    with store.run("score", dataset_id, settings) as run:
        summary.run_id = run.id
        for part in batches(todo, chunk):
            store.put_scores(scores(part, run.id))
            summary.scored += len(part)
            run.counters = summary.run_counters()
            if progress:
                progress(len(part))
        run.counters = summary.run_counters()
    return summary


def score_relevance(
    store,
    dataset: str | int,
    *,
    device: str = "cpu",
    limit: int | None = None,
    kinds: Iterable[str] | None = None,
    threshold: float = RELEVANCE_THRESHOLD,
    progress: Progress | None = None,
    chunk: int = 256,
) -> ScoreSummary:
    """Cosine similarity of each version's output to its instruction and input (flag
    `off_topic` below threshold); an empty output has no value (the checks flag it)."""
    ds = store.dataset(dataset)
    scorer = drift_module.EMBEDDER
    done = ScoredVersions(store, _MARKER["relevance"], scorer)
    summary = ScoreSummary("relevance", scorer, counters={"flags": {}})

    def todo() -> Iterator[Version]:
        for _sample, versions in dataset_versions(
            store, ds.id, kinds=kinds, limit=limit, done=done
        ):
            for version in versions:
                if version.key in done:
                    summary.skipped += 1
                else:
                    yield version

    def scores(part: list[Version], run_id: int) -> list[Score]:
        texts = [(drift_module.instruction_text(v.instruction, v.input), v.output)
                 for v in part if v.output.strip()]  # fmt: skip
        values = iter(drift_module.similarities(texts, device))
        found = []
        for v in part:
            value = next(values) if v.output.strip() else None
            flags = relevance_flags(value, threshold)
            for flag in flags:
                summary.counters["flags"][flag] = summary.counters["flags"].get(flag, 0) + 1
            detail = {"threshold": threshold, "flags": flags}
            found.append(Score(v.sample_id, RELEVANCE_METRIC, value, scorer,
                               v.candidate_id, detail, run_id))  # fmt: skip
        return found

    settings = _settings("relevance", {"scorer": scorer, "threshold": threshold})
    return _score_in_chunks(store, ds.id, settings, summary, todo(), scores, chunk, progress)


def count_versions(
    store: Store,
    dataset: str | int,
    *,
    limit: int | None = None,
    kinds: Iterable[str] | None = None,
    originals: bool = True,
) -> int:
    """How many versions a scoring call would look at (for progress bars)."""
    ds = store.dataset(dataset)
    return sum(
        sum(1 for v in versions if originals or v.candidate_id is not None)
        for _, versions in dataset_versions(store, ds.id, kinds=kinds, limit=limit)
    )
