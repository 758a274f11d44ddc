"""The audit log: sign-ins, failed sign-ins, role changes, assignments, adjudications.

Append-only, like reviews: an event is written once and never changed. `detail` is JSON and
passes through the same scrubber as run settings, so nothing that looks like a credential
is ever stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import StoreBase, dumps, inserted_id, loads, now
from .runs import scrub


@dataclass(frozen=True)
class AuditEvent:
    """One thing someone did, as the audit log keeps it."""

    actor: str
    action: str
    target: str = ""
    dataset_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    id: int | None = None


class AuditStore(StoreBase):
    def add_audit_event(
        self,
        actor: str,
        action: str,
        target: str = "",
        *,
        dataset_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Record one event (inside the caller's transaction, if there is one)."""
        event = AuditEvent(actor, action, target, dataset_id, scrub(detail or {}), now())
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO audit (created_at, actor, action, target, dataset_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [event.created_at, actor, action, target, dataset_id, dumps(event.detail)],
            )
            event_id = inserted_id(cursor)
        return AuditEvent(**{**event.__dict__, "id": event_id})

    def audit_events(
        self, *, action: str | None = None, actor: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """Events oldest first, optionally of one action or one actor; the newest `limit`."""
        clauses: list[str] = []
        params: list[Any] = []
        if action:
            clauses.append("action = ?")
            params.append(action)
        if actor:
            clauses.append("actor = ?")
            params.append(actor)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM audit {where} ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        rows = [dict(row) for row in self.query(sql, params)]
        return [
            AuditEvent(
                actor=r["actor"],
                action=r["action"],
                target=r["target"],
                dataset_id=r["dataset_id"],
                detail=loads(r["detail"], {}),
                created_at=r["created_at"],
                id=r["id"],
            )  # fmt: skip
            for r in reversed(rows)
        ]
