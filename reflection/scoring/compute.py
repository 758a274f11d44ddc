"""The one entry point for scoring a dataset: `score_dataset(store, dataset, settings)`.

Both the CLI and background jobs call it. It computes each asked-for family in a fixed order
(text and content checks, drift, relevance, the student's IFD / r-IFD, the judge), each
resumable: versions that already have the score are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from ..store import Store
from .forward import LossModel
from .runner import (
    ScoreSummary,
    count_versions,
    score_drift,
    score_relevance,
    score_student,
    score_text,
)
from .settings import ScoringSettings

if TYPE_CHECKING:  # the judge (and openai) load only when a judge score is asked for
    from .judge import JudgeSummary

# Called when a family starts, with its label and how many versions it will look at.
OnFamily = Callable[[str, int], None]
Progress = Callable[[int], None]


class _Versions(TypedDict):
    """Which versions every family looks at."""

    limit: int | None
    kinds: tuple[str, ...] | None


def count_work(store: Store, dataset: str | int, settings: ScoringSettings) -> int:
    """How many version scorings `score_dataset` will look at, over all families."""
    options: _Versions = {"limit": settings.limit, "kinds": settings.kinds}
    total = 0
    for metric in settings.metrics:
        originals = metric not in ("drift",) and not (metric == "judge" and settings.pairwise)
        total += count_versions(store, dataset, originals=originals, **options)
    return total


def score_dataset(
    store: Store,
    dataset: str | int,
    settings: ScoringSettings,
    *,
    on_family: OnFamily | None = None,
    progress: Progress | None = None,
) -> list[ScoreSummary | JudgeSummary]:
    """Compute every score `settings` asks for; returns one summary per family and run."""
    settings.validate()
    options: _Versions = {"limit": settings.limit, "kinds": settings.kinds}
    results: list[ScoreSummary | JudgeSummary] = []

    def begin(label: str, total: int) -> None:
        if on_family is not None:
            on_family(label, total)

    if "text" in settings.metrics:
        begin("text", count_versions(store, dataset, **options))
        results.append(score_text(store, dataset, progress=progress, **options))
    if "drift" in settings.metrics:
        begin("drift", count_versions(store, dataset, originals=False, **options))
        results.append(
            score_drift(
                store, dataset, device=settings.device or "cpu", progress=progress, **options
            )
        )
    if "relevance" in settings.metrics:
        begin("relevance", count_versions(store, dataset, **options))
        results.append(
            score_relevance(
                store, dataset, device=settings.device or "cpu", progress=progress, **options
            )
        )
    families = settings.student_families
    if families:
        student = _student(settings)
        total = count_versions(store, dataset, **options) * len(families)
        begin(f"{'+'.join(families)} ({student.device})", total)
        results += score_student(
            store, dataset, families, student=student, template=settings.template,
            max_length=settings.max_length, batch_size=settings.batch_size, progress=progress,
            **options,
        )  # fmt: skip
    if "judge" in settings.metrics:
        from .judge import score_judge

        assert settings.judge is not None  # validate() saw to it
        begin("judge", count_versions(store, dataset, originals=not settings.pairwise, **options))
        results.append(
            score_judge(
                store,
                dataset,
                settings.judge,
                pairwise=settings.pairwise,
                progress=progress,
                **options,
            )  # fmt: skip
        )
    return results


def _student(settings: ScoringSettings) -> LossModel:
    if settings.student_endpoint:
        from .endpoint import endpoint_student

        return endpoint_student(
            settings.student_endpoint, settings.student, settings.student_endpoint_model
        )
    from .student import load_student

    return load_student(settings.student, settings.device)
