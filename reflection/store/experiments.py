"""Prompt experiments: a spot-check whose settings name the templates compared (its arms)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import StoreBase, dumps, json_list


class ExperimentStore(StoreBase):
    def set_spotcheck_settings(self, spotcheck_id: int, settings: dict[str, Any]) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE spotchecks SET settings = ? WHERE id = ?", [dumps(settings), spotcheck_id]
            )

    def candidates_by_prompt(
        self, sample_ids: Iterable[int], prompt_hashes: Iterable[str]
    ) -> dict[tuple[int, str], list[int]]:
        """(sample_id, prompt_hash) -> ids of the usable candidates it produced, oldest first."""
        rows = self.conn.execute(
            "SELECT sample_id, prompt_hash, id FROM candidates"
            " WHERE sample_id IN (SELECT value FROM json_each(?))"
            " AND prompt_hash IN (SELECT value FROM json_each(?)) AND status IN ('ok', 'truncated')"
            " ORDER BY id",
            [json_list(sample_ids), json_list(prompt_hashes)],
        )
        found: dict[tuple[int, str], list[int]] = {}
        for sample_id, prompt_hash, candidate_id in rows:
            found.setdefault((sample_id, prompt_hash), []).append(candidate_id)
        return found

    def version_values(
        self, sample_ids: Iterable[int], metric: str
    ) -> dict[tuple[int, int], float]:
        """(sample_id, candidate_id or 0) -> the metric's value (the first scorer by name)."""
        rows = self.conn.execute(
            "SELECT sample_id, candidate_id, value FROM scores WHERE metric = ?"
            " AND sample_id IN (SELECT value FROM json_each(?)) AND value IS NOT NULL"
            " ORDER BY scorer DESC",
            [metric, json_list(sample_ids)],
        )
        return {(s, c): v for s, c, v in rows}
