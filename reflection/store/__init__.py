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
        """Counts of samples, candidates, scores, reviews by decision and samples by status."""
        where, params = ("WHERE s.dataset_id = ?", [dataset_id]) if dataset_id else ("", [])

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): v for k, v in self.conn.execute(sql, params)}

        return {
            "samples": self.count_samples(dataset_id),
            "flagged_samples": grouped(
                f"SELECT j.value, count(*) FROM samples s, json_each(s.flags) j {where}"
                " GROUP BY j.value ORDER BY j.value"
            ),
            "candidates": self.count_candidates(dataset_id),
            "candidates_by_kind": grouped(
                f"SELECT c.kind, count(*) FROM candidates c JOIN samples s ON s.id = c.sample_id"
                f" {where} GROUP BY c.kind ORDER BY c.kind"
            ),
            "candidates_by_status": grouped(
                f"SELECT c.status, count(*) FROM candidates c JOIN samples s ON s.id = c.sample_id"
                f" {where} GROUP BY c.status ORDER BY c.status"
            ),
            "scores_by_metric": grouped(
                f"SELECT sc.metric, count(*) FROM scores sc JOIN samples s ON s.id = sc.sample_id"
                f" {where} GROUP BY sc.metric ORDER BY sc.metric"
            ),
            "reviews_by_decision": grouped(
                f"SELECT r.decision, count(*) FROM reviews r JOIN samples s ON s.id = r.sample_id"
                f" {where} GROUP BY r.decision ORDER BY r.decision"
            ),
            "samples_by_status": self.status_counts(dataset_id),
            "suggestions": self.scalar(
                f"SELECT count(*) FROM suggestions sg JOIN samples s ON s.id = sg.sample_id {where}",
                params,
            ),
            "suggestions_by_decision": grouped(
                "SELECT sg.decision || CASE WHEN sg.decision = 'accept' THEN"
                " CASE WHEN sg.candidate_id = 0 THEN ' original' ELSE ' reflected' END ELSE '' END,"
                f" count(*) FROM suggestions sg JOIN samples s ON s.id = sg.sample_id {where}"
                " GROUP BY 1 ORDER BY 1"
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
