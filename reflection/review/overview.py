"""A dataset at a glance: counts, review progress, and the step that makes most sense next.

Steps are named, not paths: `import`, `run`, `review`, `bulk`, `export`. The UI knows which
page each one opens.
"""

from __future__ import annotations

from ..store import Store

STEPS = ("import", "run", "review", "bulk", "export")


def dataset_overview(store: Store, dataset_id: int) -> dict:
    """Counts and review progress of a dataset, and the step that makes most sense next."""
    statuses = store.status_counts(dataset_id)
    samples = store.count_samples(dataset_id)
    candidates = store.count_candidates(dataset_id)
    scores = store.count_scores(dataset_id)
    decided = samples - statuses.get("undecided", 0) - statuses.get("skipped", 0)
    if not candidates:
        step = (
            "No reflections yet: reflect the dataset on the Run page or with `reflection reflect`.",
            "run",
            "Run a reflection",
        )
    elif not scores:
        step = (
            "No scores yet: score originals and reflections on the Run page or with"
            " `reflection score`.",
            "run",
            "Run scoring",
        )
    elif statuses.get("undecided", 0):
        step = (
            f"{statuses['undecided']:,} samples wait for a decision: review them one by one,"
            " or apply a rule to many on the Bulk page.",
            "review",
            "Start reviewing",
        )
    else:
        step = ("Every sample is decided: export the curated set.", "export", "Export")
    return {
        "samples": samples,
        "candidates": candidates,
        "scored": scores,
        "decided": decided,
        "progress": decided / samples if samples else 0.0,
        "statuses": statuses,
        "next_step": dict(zip(("text", "step", "label"), step, strict=True)),
    }
