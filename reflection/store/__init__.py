"""The SQLite store: the only place with SQL. One `Store` class, one mixin per table family.

Open with `Store(path)`: the schema is created or migrated on open, in WAL mode with a
busy timeout, so several processes (CLI runs, app sessions) can share one file.
"""

from __future__ import annotations

from typing import Any

from .accounts import Account, AccountStore, SignedInSession, SignInFailures
from .analytics import AnalyticsStore
from .assignments import AssignmentStore
from .audit import AuditEvent, AuditStore
from .background_jobs import BackgroundJob, BackgroundJobStore
from .base import StoreBase, now
from .candidate_staging import AdoptStore
from .candidates import CandidateStore
from .experiments import ExperimentStore
from .oracle_jobs import OracleJobStore
from .queue import QueueStore
from .review_origins import ReviewOriginStore
from .reviews import ReviewStore
from .runs import RunStore, scrub
from .samples import SampleStore
from .schema import MIGRATIONS, ensure_schema
from .scores import ScoreStore
from .scoring import ScoringStore
from .search import SearchIndexStore
from .spotcheck import SpotCheckStore
from .tallies import TallyStore


class Store(
    SampleStore,
    OracleJobStore,  # a CandidateStore
    CandidateStore,
    AssignmentStore,  # a ReviewStore
    ReviewStore,
    ReviewOriginStore,
    ScoreStore,
    ScoringStore,
    BackgroundJobStore,  # a RunStore
    RunStore,
    AnalyticsStore,
    SpotCheckStore,  # a QueueStore
    QueueStore,
    ExperimentStore,
    AuditStore,
    AccountStore,
    SearchIndexStore,
    AdoptStore,
    TallyStore,
    StoreBase,
):
    """Everything the library keeps, in one SQLite file."""

    def stats(self, dataset_id: int | None = None) -> dict[str, Any]:
        """Counts of samples, candidates, scores, reviews by decision and samples by status.

        Of the whole store, rows are counted without finding their samples (foreign keys hold
        every row to one): at 10M samples, a store larger than memory, the joins read a sample
        at random for each of 80M scores and took `stats` 530 s. Of one dataset, the joins
        start from its samples, in order."""
        where, params = ("WHERE s.dataset_id = ?", [dataset_id]) if dataset_id else ("", [])

        def of(table: str, alias: str) -> str:
            join = f" JOIN samples s ON s.id = {alias}.sample_id {where}" if dataset_id else ""
            return f"{table} {alias}{join}"

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): v for k, v in self.conn.execute(sql, params)}

        flagged = "AND s.dataset_id = ?" if dataset_id else ""
        return {
            "samples": self.count_samples(dataset_id),
            "flagged_samples": grouped(  # read from the index of the flagged samples only
                f"SELECT j.value, count(*) FROM samples s, json_each(s.flags) j"
                f" WHERE s.flags != '[]' {flagged} GROUP BY j.value ORDER BY j.value"
            ),
            "candidates": self.count_candidates(dataset_id),
            "candidates_by_kind": grouped(
                f"SELECT c.kind, count(*) FROM {of('candidates', 'c')}"
                " GROUP BY c.kind ORDER BY c.kind"
            ),
            "candidates_by_status": grouped(
                f"SELECT c.status, count(*) FROM {of('candidates', 'c')}"
                " GROUP BY c.status ORDER BY c.status"
            ),
            "scores_by_metric": grouped(
                f"SELECT sc.metric, count(*) FROM {of('scores', 'sc')}"
                " GROUP BY sc.metric ORDER BY sc.metric"
            ),
            "reviews_by_decision": grouped(
                f"SELECT r.decision, count(*) FROM {of('reviews', 'r')}"
                " GROUP BY r.decision ORDER BY r.decision"
            ),
            "samples_by_status": self.status_counts(dataset_id),
            "suggestions": self.scalar(f"SELECT count(*) FROM {of('suggestions', 'sg')}", params),
            "suggestions_by_decision": grouped(
                "SELECT sg.decision || CASE WHEN sg.decision = 'accept' THEN"
                " CASE WHEN sg.candidate_id = 0 THEN ' original' ELSE ' reflected' END ELSE '' END,"
                f" count(*) FROM {of('suggestions', 'sg')} GROUP BY 1 ORDER BY 1"
            ),
            "scorers": self.scoring_scorers(dataset_id),
        }


__all__ = [
    "MIGRATIONS",
    "Account",
    "AuditEvent",
    "BackgroundJob",
    "SignInFailures",
    "SignedInSession",
    "Store",
    "ensure_schema",
    "now",
    "scrub",
]
