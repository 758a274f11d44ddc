"""Background work started from the app: reflection or scoring in a thread of its own.

A page must not block while hundreds of oracle requests run, and a page refresh (a new
Streamlit session) must not lose the work. So `start_job` records a `job` run, starts a daemon
thread with its own `Store` connection, and returns the run id; the thread keeps the run's
status and counters (done, total, a heartbeat, the id of the library's own reflect or score
run) current, and any session can poll `job_state`. The thread lives as long as the app's
process; a job whose process died is reported `interrupted` once its heartbeat goes stale.

The API key is an argument of `start_job` and lives only in the thread's memory: it is never
part of the job's settings, the run records, or anything else written to the database.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import db_key
from .errors import ConfigError, ReflectionError
from .records import stored_id
from .reflect.settings import MODES, OracleConfig
from .scoring.settings import ScoringSettings
from .store import Store

TASKS = ("reflect", "score")
ACTIVE = "running"
# A running job whose heartbeat is older than this, and that no thread here owns, is dead.
STALE_AFTER_S = 60.0
_HEARTBEAT_EVERY_S = 0.5


@dataclass
class JobSpec:
    """What to run: a reflection with its oracle settings, or scoring with its settings.

    The stage's own settings object is carried as built by the page; its API key stays in
    this process's memory (`OracleConfig.settings()`, which the run record keeps, has none).
    """

    task: str
    dataset_id: int
    sample_ids: list[int] | None = None  # reflection only; None = every sample
    mode: str = "instruction"
    oracle: OracleConfig | None = None
    scoring: ScoringSettings | None = None

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown job task {self.task!r}; use one of {', '.join(TASKS)}")
        if self.task == "reflect":
            if self.oracle is None:
                raise ConfigError("a reflection job needs oracle settings")
            if self.mode not in MODES:
                raise ConfigError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
            self.oracle.validate()
        else:
            if self.scoring is None:
                raise ConfigError("a scoring job needs scoring settings")
            self.scoring.validate()

    def settings(self) -> dict[str, Any]:
        """For the job's run record (never the key: the stage settings leave it out)."""
        found: dict[str, Any] = {"task": self.task, "dataset_id": self.dataset_id}
        if self.task == "reflect" and self.oracle is not None:
            ids = self.sample_ids
            found.update(mode=self.mode, samples="all" if ids is None else len(ids))
            found.update(self.oracle.settings())
        elif self.scoring is not None:
            found.update(self.scoring.settings())
        return found


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

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


class _Stopped(Exception):
    """Raised inside a scoring progress hook to end the run early."""


@dataclass
class _Handle:
    thread: threading.Thread
    stop: threading.Event


_JOBS: dict[tuple[str, int], _Handle] = {}
_LOCK = threading.Lock()


def _key(db_path: str | Path, run_id: int) -> tuple[str, int]:
    return (db_key(db_path), run_id)


def start_job(db_path: str | Path, spec: JobSpec) -> int:
    """Record a `job` run, start its thread, and return the run id (the page polls it)."""
    spec.validate()
    with Store(db_path) as store:
        store.dataset(spec.dataset_id)  # NotFoundError before any thread starts
        run_id = stored_id(store.start_run("job", spec.dataset_id, spec.settings()))
        store.update_run(run_id, counters={"done": 0, "total": 0, "heartbeat": time.time()})
    stop = threading.Event()
    thread = threading.Thread(
        target=_work,
        args=(db_path, run_id, spec, stop),
        name=f"reflection-job-{run_id}",
        daemon=True,
    )
    with _LOCK:
        _JOBS[_key(db_path, run_id)] = _Handle(thread, stop)
    thread.start()
    return run_id


def stop_job(db_path: str | Path, run_id: int) -> bool:
    """Ask a job of this process to stop after the requests in flight; False if not ours."""
    with _LOCK:
        handle = _JOBS.get(_key(db_path, run_id))
    if handle is None or not handle.thread.is_alive():
        return False
    handle.stop.set()
    return True


def wait_job(db_path: str | Path, run_id: int, timeout: float | None = None) -> bool:
    """Wait for a job of this process to end; True if it has."""
    with _LOCK:
        handle = _JOBS.get(_key(db_path, run_id))
    if handle is None:
        return True
    handle.thread.join(timeout)
    return not handle.thread.is_alive()


def _owned(db_path: str | Path, run_id: int) -> bool:
    with _LOCK:
        handle = _JOBS.get(_key(db_path, run_id))
    return handle is not None and handle.thread.is_alive()


def job_state(store: Store, run_id: int) -> JobState:
    """A job's state as its run records it; `interrupted` if it died without finishing."""
    run = store.get_run(run_id)
    counters = dict(run.counters)
    status = run.status
    heartbeat = counters.get("heartbeat") or 0
    if (
        status == ACTIVE
        and not _owned(store.target, run_id)
        and time.time() - heartbeat > STALE_AFTER_S
    ):
        status = "interrupted"
    return JobState(
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


def jobs(store: Store, dataset_id: int | None = None, limit: int = 10) -> list[JobState]:
    """The newest jobs, newest first."""
    runs = store.runs("job", dataset_id)[-limit:]
    return [job_state(store, stored_id(run)) for run in reversed(runs)]


def reap(store: Store) -> int:
    """Mark jobs that died with their process as `interrupted`; returns how many."""
    found = 0
    for run in store.runs("job"):
        if run.status == ACTIVE and job_state(store, stored_id(run)).status == "interrupted":
            store.update_run(
                stored_id(run), status="interrupted", error="the app stopped during the job"
            )
            found += 1
    return found


# --- choosing samples ------------------------------------------------------------------------

SELECTIONS = ("all", "undecided", "first", "ids")


def parse_ids(text: str) -> list[int]:
    """Sample ids typed as "3, 7-9 12": single ids and inclusive ranges, in order, no repeats."""
    found: dict[int, None] = {}
    for part in text.replace(",", " ").split():
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise ConfigError(f"{part!r} is not a sample id or a range like 10-20") from None
        if last < first:
            raise ConfigError(f"range {part!r} runs backwards")
        if last - first > 1_000_000:
            raise ConfigError(f"range {part!r} is too long")
        found.update(dict.fromkeys(range(first, last + 1)))
    return list(found)


def select_samples(
    store: Store, dataset_id: int, how: str, *, first: int = 0, ids: str = ""
) -> list[int] | None:
    """Sample ids for a job: None for all, the undecided ones, the first n, or typed ids."""
    if how == "all":
        return None
    if how == "undecided":
        from .store.queue import QueueQuery

        return store.queue_ids(dataset_id, QueueQuery(statuses=("undecided",)))
    if how == "first":
        return store.sample_ids(dataset_id)[: max(first, 0)]
    if how == "ids":
        wanted = parse_ids(ids)
        known = set(store.sample_ids(dataset_id))
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ConfigError(f"sample {missing[0]} is not in this dataset")
        return wanted
    raise ConfigError(f"unknown selection {how!r}; use one of {', '.join(SELECTIONS)}")


# --- the thread ----------------------------------------------------------------------------


class _Reporter:
    """Writes progress to the job's run, at most every half second (and at the end)."""

    def __init__(self, store: Store, run_id: int):
        self.store, self.run_id = store, run_id
        self.counters: dict[str, Any] = {"done": 0, "total": 0}
        self.last = 0.0

    def update(self, force: bool = False, **values: Any) -> None:
        self.counters.update(values)
        now = time.time()
        if force or now - self.last >= _HEARTBEAT_EVERY_S:
            self.last = now
            self.store.update_run(self.run_id, counters={**self.counters, "heartbeat": now})


def _work(db_path: Path, run_id: int, spec: JobSpec, stop: threading.Event) -> None:
    try:
        store = Store(db_path)
    except ReflectionError as exc:  # nothing to record into
        traceback.print_exception(exc)
        return
    with store:
        reporter = _Reporter(store, run_id)
        try:
            if spec.task == "reflect":
                status = _reflect(store, spec, stop, reporter)
            else:
                status = _score(store, spec, stop, reporter)
        except BaseException as exc:  # a thread has no caller: the run is where errors go
            reporter.update(force=True)
            message = (
                str(exc) if isinstance(exc, ReflectionError) else f"{type(exc).__name__}: {exc}"
            )
            store.update_run(run_id, status="failed", error=message)
            return
        reporter.update(force=True)
        store.update_run(run_id, status=status)


def _reflect(store: Store, spec: JobSpec, stop: threading.Event, reporter: _Reporter) -> str:
    from .reflect.pipeline import reflect_dataset

    def progress(counters: dict[str, Any]) -> None:
        done = counters.get("stored", 0) + counters.get("skipped", 0)
        left = {k: counters.get(k, 0) for k in ("ok", "failed", "error", "cached", "cost")}
        reporter.update(done=done, total=counters.get("total", 0) - counters.get("blocked", 0),
                        **left)  # fmt: skip

    summary = reflect_dataset(
        store,
        spec.dataset_id,
        mode=spec.mode,
        oracle=spec.oracle,
        sample_ids=spec.sample_ids,
        progress=progress,
        stop_event=stop,
    )
    progress(summary.counters)
    reporter.update(run_id=summary.run_id)
    return "stopped" if summary.status == "stopped" else "done"


def _score(store: Store, spec: JobSpec, stop: threading.Event, reporter: _Reporter) -> str:
    from .scoring.compute import count_work, score_dataset

    assert spec.scoring is not None  # validated before the thread started
    reporter.update(force=True, total=count_work(store, spec.dataset_id, spec.scoring))

    def progress(n: int) -> None:
        reporter.update(done=reporter.counters["done"] + n)
        if stop.is_set():
            raise _Stopped

    try:
        summaries = score_dataset(store, spec.dataset_id, spec.scoring, progress=progress)
    except _Stopped:
        return "stopped"
    summary = summaries[-1]
    reporter.update(run_id=summary.run_id, scored=sum(s.scored for s in summaries),
                    skipped=sum(s.skipped for s in summaries),
                    done=reporter.counters["total"])  # fmt: skip
    return "done"
