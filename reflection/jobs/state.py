"""What a page shows about a job, read from the database: the same on every app server."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..records import Run, stored_id
from ..store import BackgroundJob, Store
from .runner import owned_here, owner_id

ACTIVE = "running"
# A running job whose owner has not beaten for this long is presumed dead: any server's
# supervisor takes it over.
STALE_AFTER_S = 60.0


@dataclass
class JobState:
    """What a page shows about a job."""

    run_id: int
    task: str
    status: str  # running, done, stopped, failed, interrupted
    done: int = 0
    total: int = 0
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    inner_run_id: int | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    owner: str = ""  # the app process (host:pid:random) that runs or ran it
    silent_for: float = 0.0  # seconds since its owner's last heartbeat
    stalled: bool = False  # running, but its owner went silent: to be taken over
    takeovers: list[dict[str, Any]] = field(default_factory=list)
    stop_requested: str = ""  # who asked it to stop
    key_source: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def taken_over(self) -> bool:
        return any(t.get("from") for t in self.takeovers)


def _state(store: Store, run: Run, row: BackgroundJob | None, stale_after: float) -> JobState:
    run_id = stored_id(run)
    counters = dict(run.counters)
    status = run.status
    state = JobState(
        run_id=run_id,
        task=run.settings.get("task", ""),
        status=status,
        done=int(counters.get("done", 0)),
        total=int(counters.get("total", 0)),
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
        inner_run_id=counters.get("run_id"),
        counters=counters,
        settings=run.settings,
    )
    if row is None:  # recorded before jobs had rows: its heartbeat is among the counters
        heartbeat = counters.get("heartbeat") or 0
        stale = time.time() - heartbeat > stale_after
        if status == ACTIVE and stale and not owned_here(store.target, run_id):
            state.status = "interrupted"
        return state
    state.owner, state.silent_for = row.owner, max(0.0, row.age)
    state.takeovers, state.stop_requested = row.takeovers, row.stop_requested
    state.key_source = row.key_source
    state.stalled = status == ACTIVE and row.age > stale_after
    return state


def job_state(store: Store, run_id: int, *, stale_after: float = STALE_AFTER_S) -> JobState:
    """A job's state as its run and its row record it."""
    return _state(store, store.get_run(run_id), store.background_job(run_id), stale_after)


def jobs(
    store: Store, dataset_id: int | None = None, limit: int = 10, *,
    stale_after: float = STALE_AFTER_S,
) -> list[JobState]:  # fmt: skip
    """The newest jobs, newest first."""
    runs = list(reversed(store.runs("job", dataset_id)[-limit:]))
    rows = store.background_jobs(stored_id(run) for run in runs)
    return [_state(store, run, rows.get(stored_id(run)), stale_after) for run in runs]


def reap(store: Store, *, stale_after: float = STALE_AFTER_S) -> int:
    """Mark jobs recorded before jobs had rows, that died with their process, `interrupted`
    (jobs with a row are taken over instead); returns how many."""
    found = 0
    running = [run for run in store.runs("job") if run.status == ACTIVE]
    rows = store.background_jobs(stored_id(run) for run in running)
    for run in running:
        run_id = stored_id(run)
        if run_id in rows:
            continue
        if _state(store, run, None, stale_after).status == "interrupted":
            store.update_run(run_id, status="interrupted", error="the app stopped during the job")
            found += 1
    return found


def _clock(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return stamp


def where(state: JobState) -> str:
    """Which server runs a job, and whether it was taken over, in one line for a page."""
    if not state.owner:
        return ""
    here = " (this server)" if state.owner == owner_id() else ""
    verb = "runs on" if state.active else "ran on"
    parts = [f"{verb} {state.owner}{here}"]
    for takeover in state.takeovers:
        if takeover.get("from"):
            parts.append(
                f"taken over from {takeover['from']} at {_clock(str(takeover.get('at', '')))}"
            )
    if state.stalled:
        parts.append(
            f"its server has not answered for {state.silent_for:.0f} s;"
            " another server will take it over"
        )
    if state.stop_requested and state.active:
        parts.append(f"stop asked by {state.stop_requested}")
    return " · ".join(parts)
