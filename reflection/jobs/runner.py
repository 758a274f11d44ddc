"""A job's thread in this process: it runs the stage, and a heartbeat thread beside it keeps the
job's row alive, its counters current, and listens for a stop request from any server.

A page must not block while hundreds of oracle requests run, and a page refresh (a new
Streamlit session) must not lose the work. So `start_job` records the job (its run and its
row, owned by this process) and starts a daemon thread with its own `Store` connection. The
heartbeat thread writes every `beat_every` seconds whether or not the stage made progress (a
long student batch is not a dead server), and only while this process still owns the job: a
server that finds the job taken over stops it and writes nothing more.

The API key is an argument (inside the spec's settings object) and lives only in the
threads' memory: never in the job's row, its run records, or anything else written.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import db_key
from ..errors import ReflectionError
from ..store import Store
from .spec import JobSpec, key_source

BEAT_EVERY_S = 0.5  # heartbeat and progress written this often by the owner of a job

_owner: tuple[int, str] | None = None


def owner_id() -> str:
    """This process as a job's owner: host:pid:random (a pid alone may be reused)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(3)}")
    return _owner[1]


class _Stopped(Exception):
    """Raised inside a scoring progress hook to end the run early."""


@dataclass
class _Handle:
    thread: threading.Thread
    stop: threading.Event
    owner: str


_JOBS: dict[tuple[str, int], list[_Handle]] = {}
_LOCK = threading.Lock()


def _handles(db_path: str | Path, run_id: int) -> list[_Handle]:
    with _LOCK:
        return list(_JOBS.get((db_key(db_path), run_id), []))


def local_jobs(db_path: str | Path) -> set[int]:
    """The jobs on this database that a thread of this process is running now."""
    key = db_key(db_path)
    with _LOCK:
        return {
            run_id
            for (db, run_id), handles in _JOBS.items()
            if db == key and any(h.thread.is_alive() for h in handles)
        }


def start_job(
    db_path: str | Path,
    spec: JobSpec,
    *,
    owner: str | None = None,
    beat_every: float = BEAT_EVERY_S,
) -> int:
    """Record a job owned by this process (or `owner`), start its thread, return the run id."""
    spec.validate()
    owner = owner or owner_id()
    with Store(db_path) as store:
        store.dataset(spec.dataset_id)  # NotFoundError before any thread starts
        run_id = store.start_background_job(
            spec.dataset_id, spec.settings(), spec.record(),
            key_source=key_source(spec.api_key), owner=owner,
        )  # fmt: skip
    launch(db_path, run_id, spec, owner, beat_every=beat_every)
    return run_id


def launch(
    db_path: str | Path,
    run_id: int,
    spec: JobSpec,
    owner: str,
    *,
    counters: dict[str, Any] | None = None,
    beat_every: float = BEAT_EVERY_S,
) -> None:
    """Run a job that `owner` holds, in a thread of this process, from `counters` on."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_work,
        args=(db_path, run_id, spec, owner, stop, beat_every, counters),
        name=f"reflection-job-{run_id}",
        daemon=True,
    )
    with _LOCK:
        handles = _JOBS.setdefault((db_key(db_path), run_id), [])
        handles[:] = [h for h in handles if h.thread.is_alive()]
        handles.append(_Handle(thread, stop, owner))
    thread.start()


def stop_here(db_path: str | Path, run_id: int) -> bool:
    """Stop this process's threads of a job at once (the database request reaches the rest)."""
    found = [h for h in _handles(db_path, run_id) if h.thread.is_alive()]
    for handle in found:
        handle.stop.set()
    return bool(found)


def wait_job(db_path: str | Path, run_id: int, timeout: float | None = None) -> bool:
    """Wait for this process's threads of a job to end; True if they have."""
    for handle in _handles(db_path, run_id):
        handle.thread.join(timeout)
    return not any(h.thread.is_alive() for h in _handles(db_path, run_id))


def owned_here(db_path: str | Path, run_id: int) -> bool:
    return any(h.thread.is_alive() for h in _handles(db_path, run_id))


class _Reporter:
    """The job's counters, kept in memory by the job's thread and written with each heartbeat
    by a thread of its own. Sets `stop` on a stop request, or when the job was taken over
    (`deposed`)."""

    def __init__(self, db_path: str | Path, run_id: int, owner: str, stop: threading.Event,
                 beat_every: float, counters: dict[str, Any] | None):  # fmt: skip
        self.db_path, self.run_id, self.owner = db_path, run_id, owner
        self.stop, self.beat_every = stop, beat_every
        self.counters: dict[str, Any] = {"done": 0, "total": 0, **(counters or {})}
        self.counters.pop("heartbeat", None)
        self.deposed = False
        self._lock = threading.Lock()
        self._over = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"reflection-job-{run_id}-heartbeat", daemon=True
        )
        self._thread.start()

    def update(self, **values: Any) -> None:
        with self._lock:
            self.counters.update(values)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.counters)

    def _beat(self) -> None:
        try:
            store = Store(self.db_path)
        except ReflectionError as exc:  # no heartbeat: another server will take the job over
            traceback.print_exception(exc)
            return
        with store:
            while True:
                try:
                    request = store.beat_background_job(self.run_id, self.owner, self.snapshot())
                except ReflectionError as exc:  # the database is away: beat again later
                    print(f"reflection job {self.run_id}: {exc}", file=sys.stderr)
                except Exception:
                    traceback.print_exc()
                else:
                    if request is None:  # taken over by another server
                        self.deposed = True
                        self.stop.set()
                        return
                    if request:
                        self.stop.set()
                if self._over.wait(self.beat_every):
                    return

    def close(self) -> None:
        self._over.set()
        self._thread.join()


def _work(
    db_path: str | Path,
    run_id: int,
    spec: JobSpec,
    owner: str,
    stop: threading.Event,
    beat_every: float,
    counters: dict[str, Any] | None,
) -> None:
    try:
        store = Store(db_path)
    except ReflectionError as exc:  # nothing to record into: another server takes it over
        traceback.print_exception(exc)
        return
    with store:
        reporter = _Reporter(db_path, run_id, owner, stop, beat_every, counters)
        status, error = "failed", None
        try:
            if spec.task == "reflect":
                status = _reflect(store, spec, stop, reporter)
            else:
                status = _score(store, spec, stop, reporter)
        except BaseException as exc:  # a thread has no caller: the run is where errors go
            error = str(exc) if isinstance(exc, ReflectionError) else f"{type(exc).__name__}: {exc}"
        finally:
            reporter.close()
        if reporter.deposed:  # its new owner carries on, and writes what happens
            return
        store.finish_background_job(
            run_id, owner, status, counters=reporter.snapshot(), error=error
        )


def _reflect(store: Store, spec: JobSpec, stop: threading.Event, reporter: _Reporter) -> str:
    from ..reflect.pipeline import reflect_dataset

    def progress(counters: dict[str, Any]) -> None:
        done = counters.get("stored", 0) + counters.get("skipped", 0)
        left = {k: counters.get(k, 0) for k in ("ok", "failed", "error", "cached", "cost")}
        reporter.update(done=done, total=counters.get("total", 0) - counters.get("blocked", 0),
                        run_id=counters.get("run_id"), **left)  # fmt: skip

    summary = reflect_dataset(
        store,
        spec.dataset_id,
        mode=spec.mode,
        oracle=spec.oracle,
        sample_ids=spec.selection.sample_ids(store, spec.dataset_id),
        progress=progress,
        stop_event=stop,
    )
    progress(summary.counters)
    reporter.update(run_id=summary.run_id)
    return "stopped" if summary.status == "stopped" else "done"


def _score(store: Store, spec: JobSpec, stop: threading.Event, reporter: _Reporter) -> str:
    from ..scoring.compute import count_work, score_dataset

    assert spec.scoring is not None  # validated before the thread started
    reporter.update(total=count_work(store, spec.dataset_id, spec.scoring))

    def progress(n: int) -> None:
        reporter.update(done=reporter.snapshot()["done"] + n)
        if stop.is_set():
            raise _Stopped

    try:
        summaries = score_dataset(store, spec.dataset_id, spec.scoring, progress=progress)
    except _Stopped:
        return "stopped"
    summary = summaries[-1]
    reporter.update(run_id=summary.run_id, scored=sum(s.scored for s in summaries),
                    skipped=sum(s.skipped for s in summaries),
                    done=reporter.snapshot()["total"])  # fmt: skip
    return "done"
