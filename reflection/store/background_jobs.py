"""Background jobs claimed through the database, so any app server can run or take over one.

A job is a `job` run (its status and counters, what every server shows) plus a row in
`background_jobs`: the spec another process rebuilds the job from, the owner (one process,
`host:pid:random`), the owner's heartbeat, a stop request, and the takeovers so far.

Heartbeats are read and written on the database's clock, so servers on different machines
compare like with like. A running job whose heartbeat is older than a claimer's stale limit
(or that never had an owner) is claimable. Claiming is a compare-and-set inside one
transaction: SQLite's `BEGIN IMMEDIATE` takes the write lock before the row is read, and
PostgreSQL's `SELECT ... FOR UPDATE SKIP LOCKED` locks the row (passing over one another server
is claiming), so two servers never both take one job. Every write by an owner (heartbeat,
counters, the final status) is conditional on still being the owner: a server that was
presumed dead and comes back finds the job gone and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..records import stored_id
from .base import dumps, json_list, loads, now
from .connection import POSTGRESQL
from .runs import RunStore

# Seconds since the epoch on the database's clock.
_NOW = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    POSTGRESQL: "extract(epoch FROM clock_timestamp())",
}


@dataclass(frozen=True)
class BackgroundJob:
    """A job's row: its spec, where its key came from, and who runs it."""

    run_id: int
    spec: dict[str, Any]
    key_source: str
    owner: str  # '' until a process has started it
    age: float  # seconds since the owner's last heartbeat (database clock)
    stop_requested: str  # who asked it to stop; '' for nobody
    takeovers: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = ""
    status: str = ""  # its run's status


def _job(row: dict[str, Any]) -> BackgroundJob:
    return BackgroundJob(
        run_id=int(row["run_id"]),
        spec=loads(row["spec"], {}),
        key_source=row["key_source"],
        owner=row["owner"],
        age=float(row["age"]),
        stop_requested=row["stop_requested"],
        takeovers=loads(row["takeovers"], []),
        created_at=row["created_at"],
        status=row["status"],
    )


class BackgroundJobStore(RunStore):
    def _now_sql(self) -> str:
        return _NOW[self.dialect]

    def _select_jobs(self) -> str:
        return (
            f"SELECT b.run_id, b.spec, b.key_source, b.owner, b.stop_requested, b.takeovers,"
            f" b.created_at, r.status, {self._now_sql()} - b.heartbeat AS age"
            " FROM background_jobs b JOIN runs r ON r.id = b.run_id"
        )

    def start_background_job(
        self,
        dataset_id: int,
        settings: dict[str, Any],
        spec: dict[str, Any],
        *,
        key_source: str,
        owner: str,
    ) -> int:
        """Record a running `job` run and its row, owned by `owner` from now (or by nobody,
        claimable at once, when `owner` is ''); returns the run id. The spec must hold no
        secret: it is stored as given."""
        with self.transaction():
            run_id = stored_id(self.start_run("job", dataset_id, settings))
            self.conn.execute(
                "UPDATE runs SET counters = ? WHERE id = ?",
                [dumps({"done": 0, "total": 0}), run_id],
            )
            beat = self._now_sql() if owner else "0"
            self.conn.execute(
                "INSERT INTO background_jobs (run_id, spec, key_source, owner, heartbeat,"
                f" created_at) VALUES (?, ?, ?, ?, {beat}, ?)",
                [run_id, dumps(spec), key_source, owner, now()],
            )
        return run_id

    def background_job(self, run_id: int) -> BackgroundJob | None:
        """A job's row, or None for a job run that has none (recorded before they existed)."""
        return self.background_jobs([run_id]).get(run_id)

    def background_jobs(self, run_ids: Iterable[int]) -> dict[int, BackgroundJob]:
        """The rows of these jobs, by run id."""
        rows = self.query(
            f"{self._select_jobs()} WHERE b.run_id IN (SELECT value FROM json_each(?))",
            [json_list(run_ids)],
        )
        return {int(row["run_id"]): _job(row) for row in rows}

    def claim_background_job(
        self,
        owner: str,
        stale_after: float,
        *,
        run_id: int | None = None,
        exclude: Iterable[int] = (),
    ) -> BackgroundJob | None:
        """Take over one running job whose heartbeat is older than `stale_after` seconds (or
        that never had an owner), or job `run_id` if it is such a job; None if there is none.

        The takeover is recorded on the row (by whom, from whom, when); the job returned is
        the row as it was before, so its `owner` is the one it was taken from.
        """
        stale = f"heartbeat < {self._now_sql()} - ?"
        sql = f"{self._select_jobs()} WHERE r.status = 'running' AND (b.{stale} OR b.owner = '')"
        params: list[Any] = [stale_after]
        if run_id is not None:
            sql += " AND b.run_id = ?"
            params.append(run_id)
        sql += " AND b.run_id NOT IN (SELECT value FROM json_each(?)) ORDER BY b.run_id LIMIT 1"
        params.append(json_list(exclude))
        if self.dialect == POSTGRESQL:  # lock the row; a row another server holds is skipped
            sql += " FOR UPDATE OF b SKIP LOCKED"
        with self.transaction():
            row = self.query_one(sql, params)
            if row is None:
                return None
            found = _job(row)
            takeovers = [*found.takeovers, {"by": owner, "from": found.owner, "at": now()}]
            cursor = self.conn.execute(
                f"UPDATE background_jobs SET owner = ?, heartbeat = {self._now_sql()},"
                f" takeovers = ? WHERE run_id = ? AND owner = ? AND ({stale} OR owner = '')",
                [owner, dumps(takeovers), found.run_id, found.owner, stale_after],
            )
            return found if cursor.rowcount == 1 else None

    def beat_background_job(
        self, run_id: int, owner: str, counters: dict[str, Any] | None = None
    ) -> str | None:
        """The owner's heartbeat, with the job's counters if given. Returns the stop request
        ('' for none), or None when `owner` no longer owns the job (nothing is written)."""
        with self.transaction():
            row = self.conn.execute(
                f"UPDATE background_jobs SET heartbeat = {self._now_sql()}"
                " WHERE run_id = ? AND owner = ? RETURNING stop_requested",
                [run_id, owner],
            ).fetchone()
            if row is None:
                return None
            if counters is not None:
                self.conn.execute(
                    "UPDATE runs SET counters = ? WHERE id = ?", [dumps(counters), run_id]
                )
            return str(row[0])

    def finish_background_job(
        self,
        run_id: int,
        owner: str,
        status: str,
        *,
        counters: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """End a job with its status (and counters, error), if `owner` still owns it."""
        with self.transaction():
            if self.beat_background_job(run_id, owner, counters) is None:
                return False
            self.update_run(run_id, status=status, error=error)
        return True

    def request_job_stop(self, run_id: int, who: str) -> bool:
        """Ask a running job to stop (its owner reads this at its next heartbeat); False if
        the job is not running."""
        with self.transaction():
            cursor = self.conn.execute(
                "UPDATE background_jobs SET stop_requested = ? WHERE run_id = ?"
                " AND run_id IN (SELECT id FROM runs WHERE id = ? AND status = 'running')",
                [who or "someone", run_id, run_id],
            )
            return cursor.rowcount == 1
