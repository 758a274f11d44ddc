"""Reviews made elsewhere: where each imported review came from, and which are already in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import StoreBase, dumps, json_list, loads


class ReviewOriginStore(StoreBase):
    def known_review_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these import keys an earlier import already added."""
        rows = self.conn.execute(
            "SELECT key FROM review_origins WHERE key IN (SELECT value FROM json_each(?))",
            [json_list(keys)],
        )
        return {row[0] for row in rows}

    def add_review_origin(self, review_id: int, key: str, origin: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO review_origins (review_id, key, origin) VALUES (?, ?, ?)",
            [review_id, key, dumps(origin)],
        )

    def review_origins(self, review_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The origin of each imported review among these (reviews made here have none)."""
        rows = self.query(
            "SELECT review_id, origin FROM review_origins"
            " WHERE review_id IN (SELECT value FROM json_each(?))",
            [json_list(review_ids)],
        )
        return {row["review_id"]: loads(row["origin"], {}) for row in rows}
