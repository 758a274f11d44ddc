"""Queries the scoring and selection code needs beyond the basic score and suggestion calls."""

from __future__ import annotations

import contextlib

from .base import StoreBase
from .suggestion_staging import SuggestionStaging


class ScoringStore(StoreBase):
    def staged_suggestions(
        self, run_id: int | None
    ) -> contextlib.AbstractContextManager[SuggestionStaging]:
        """A temporary table to write a rule's verdicts to a chunk at a time, then publish in
        one transaction (`SuggestionStaging`)."""
        return self.temp_tables(lambda conn: SuggestionStaging(conn, run_id))

    def dataset_scorers(self, dataset_id: int, metric: str) -> list[str]:
        """The scorers that gave `metric` to some version of this dataset, most used first."""
        rows = self.conn.execute(
            "SELECT sc.scorer FROM scores sc JOIN samples s ON s.id = sc.sample_id"
            " WHERE s.dataset_id = ? AND sc.metric = ? GROUP BY sc.scorer"
            " ORDER BY count(*) DESC, sc.scorer",
            [dataset_id, metric],
        )
        return [row[0] for row in rows]

    def scoring_scorers(self, dataset_id: int | None = None) -> dict[str, list[str]]:
        """{metric: [scorers]} present in the store (or one dataset). Of the whole store, from
        the scores' (metric, scorer) index alone, without finding each score's sample."""
        if dataset_id:
            rows = self.conn.execute(
                "SELECT DISTINCT sc.metric, sc.scorer FROM scores sc JOIN samples s"
                " ON s.id = sc.sample_id WHERE s.dataset_id = ? ORDER BY sc.metric, sc.scorer",
                [dataset_id],
            )
        else:
            rows = self.conn.execute(
                "SELECT DISTINCT metric, scorer FROM scores ORDER BY metric, scorer"
            )
        found: dict[str, list[str]] = {}
        for metric, scorer in rows:
            found.setdefault(metric, []).append(scorer)
        return found
