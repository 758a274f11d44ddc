"""Runs (what each import, reflection, scoring, bulk or export did) and the oracle cache."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import NotFoundError, is_interrupted
from ..records import Run, stored_id
from .base import StoreBase, dumps, inserted_id, loads, now

# Setting names that may hold a secret: never written to the database.
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization")


def scrub(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings without anything that looks like a credential."""
    clean = {}
    for name, value in settings.items():
        if any(word in name.lower() for word in _SECRET_WORDS):
            continue
        clean[name] = scrub(value) if isinstance(value, dict) else value
    return clean


def _run(row: dict[str, Any]) -> Run:
    row = dict(row)
    row["settings"] = loads(row["settings"], {})
    row["counters"] = loads(row["counters"], {})
    return Run(**row)


class RunStore(StoreBase):
    def start_run(
        self, kind: str, dataset_id: int | None = None, settings: dict[str, Any] | None = None
    ) -> Run:
        run = Run(
            kind=kind, dataset_id=dataset_id, settings=scrub(settings or {}), started_at=now()
        )
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO runs (kind, dataset_id, status, settings, counters, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [kind, dataset_id, run.status, dumps(run.settings), "{}", run.started_at],
            )
            run.id = inserted_id(cursor)
        return run

    def update_run(
        self,
        run_id: int,
        *,
        counters: dict[str, Any] | None = None,
        status: str | None = None,
        error: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Record progress; a status other than `running` also stamps the finish time."""
        sets: list[str] = []
        params: list[Any] = []
        if counters is not None:
            sets.append("counters = ?")
            params.append(dumps(counters))
        if settings is not None:
            sets.append("settings = ?")
            params.append(dumps(scrub(settings)))
        if error is not None:
            sets.append("error = ?")
            params.append(error)
        if status is not None:
            sets.append("status = ?")
            params.append(status)
            sets.append("finished_at = ?")
            params.append("" if status == "running" else now())
        if not sets:
            return
        with self.transaction():
            self.conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", [*params, run_id])

    @contextmanager
    def run(
        self, kind: str, dataset_id: int | None = None, settings: dict[str, Any] | None = None
    ) -> Iterator[Run]:
        """Record a run around a block: ``with store.run("export", ds.id, settings) as run:``.

        The block sets `run.counters` (and may set `run.status`, e.g. ``stopped``); on leaving
        it the run is finished with them, ``done`` by default. An exception marks it
        ``failed`` with the error's text (Ctrl-C: ``stopped``, ``interrupted``) and goes on.
        Inside a transaction that then rolls back, the run goes with it: nothing half-done
        is left claiming to have happened.
        """
        run = self.start_run(kind, dataset_id, settings)
        run_id = stored_id(run)
        try:
            yield run
        except BaseException as exc:
            interrupted = is_interrupted(exc)
            self.update_run(
                run_id,
                counters=run.counters,
                status="stopped" if interrupted else "failed",
                error="interrupted" if interrupted else str(exc) or type(exc).__name__,
            )
            raise
        run.status = "done" if run.status == "running" else run.status
        self.update_run(run_id, counters=run.counters, status=run.status)

    def get_run(self, run_id: int) -> Run:
        row = self.query_one("SELECT * FROM runs WHERE id = ?", [run_id])
        if row is None:
            raise NotFoundError(f"no run {run_id} in {self.path}")
        return _run(row)

    def runs(self, kind: str | None = None, dataset_id: int | None = None) -> list[Run]:
        clauses: list[str] = []
        params: list[Any] = []
        if kind:
            clauses.append("kind = ?")
            params.append(kind)
        if dataset_id:
            clauses.append("dataset_id = ?")
            params.append(dataset_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [_run(row) for row in self.query(f"SELECT * FROM runs {where} ORDER BY id", params)]

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """A cached oracle response for this request key, if any."""
        row = self.conn.execute("SELECT response FROM oracle_cache WHERE key = ?", [key]).fetchone()
        return loads(row[0]) if row else None

    def cache_put(
        self, key: str, model: str, request: dict[str, Any], response: dict[str, Any]
    ) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO oracle_cache (key, model, request, response, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET model = excluded.model,"
                " request = excluded.request, response = excluded.response,"
                " created_at = excluded.created_at",
                [key, model, dumps(scrub(request)), dumps(response), now()],
            )
