"""Taking over the jobs of a server that died, and stopping a job from any server.

Each app process runs one `Supervisor` per database: a daemon thread that every few seconds
claims the running jobs whose owner went silent (see `reflection.store.background_jobs` for the
claim) and resumes them here. Resuming is safe because the stages are resumable: reflection
skips every stored candidate (and serves answered requests from the cache), scoring computes
only the missing scores; so no sample is reflected twice. The job keeps its run: its progress
goes on where it was, and its row records who took it over from whom, and when.

A job that needs an API key this process cannot get (typed into a session on the dead server,
and no key in this server's environment) is not retried in a loop: it is marked
`interrupted` with a message saying so, to be started again from the Run page.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import db_key, is_db_url, redact
from ..errors import ReflectionError
from ..store import BackgroundJob, Store
from .runner import BEAT_EVERY_S, launch, local_jobs, owner_id, stop_here
from .spec import JobSpec, recover_key
from .state import ACTIVE, STALE_AFTER_S, reap

POLL_EVERY_S = 5.0  # how often a supervisor looks for jobs to take over
AWAY_POLL_MAX_S = 60.0  # while the database is away, looks back off to this


@dataclass(frozen=True)
class Takeover:
    """One job a supervisor claimed: from whom, and what it did (resumed, stopped,
    interrupted, failed)."""

    run_id: int
    previous_owner: str
    outcome: str
    message: str = ""


def _end_inner_run(store: Store, counters: dict[str, Any], claim: BackgroundJob) -> None:
    """The stage's own run that died with the job's server is marked as such."""
    inner = counters.get("run_id")
    if not inner:
        return
    try:
        run = store.get_run(int(inner))
    except ReflectionError:
        return
    if run.status == ACTIVE:
        gone = claim.owner or "its server"
        store.update_run(int(inner), status="interrupted", error=f"{gone} stopped during the run")


def take_over(
    store: Store,
    claim: BackgroundJob,
    owner: str,
    *,
    beat_every: float = BEAT_EVERY_S,
) -> Takeover:
    """Carry on a job `owner` has just claimed: resume it in a thread here, or end it."""
    run_id = claim.run_id
    counters = dict(store.get_run(run_id).counters)
    _end_inner_run(store, counters, claim)

    def end(outcome: str, message: str) -> Takeover:
        store.finish_background_job(run_id, owner, outcome, counters=counters, error=message)
        return Takeover(run_id, claim.owner, outcome, message)

    if claim.stop_requested:
        return end("stopped", f"stopped at the request of {claim.stop_requested}")
    try:
        spec = JobSpec.from_record(claim.spec, recover_key(claim.key_source, run_id))
        spec.validate()
    except ReflectionError as exc:
        return end("interrupted", str(exc))
    except (KeyError, TypeError, ValueError) as exc:  # a spec this version cannot read
        return end("failed", f"job {run_id} cannot be resumed here: {type(exc).__name__}: {exc}")
    if spec.task == "score":  # scoring counts its progress afresh (stored scores go fast)
        counters["done"] = 0
    launch(store.target, run_id, spec, owner, counters=counters, beat_every=beat_every)
    return Takeover(run_id, claim.owner, "resumed")


def supervise_once(
    store: Store,
    *,
    owner: str | None = None,
    stale_after: float = STALE_AFTER_S,
    beat_every: float = BEAT_EVERY_S,
) -> list[Takeover]:
    """Claim every job whose owner went silent, and take each over; returns what was done."""
    owner = owner or owner_id()
    reap(store, stale_after=stale_after)
    done: list[Takeover] = []
    skip = local_jobs(store.target)  # slow here, not dead: never claimed from ourselves
    while (claim := store.claim_background_job(owner, stale_after, exclude=skip)) is not None:
        skip.add(claim.run_id)
        done.append(take_over(store, claim, owner, beat_every=beat_every))
    return done


def request_stop(
    store: Store, run_id: int, who: str = "", *, stale_after: float = STALE_AFTER_S
) -> bool:
    """Ask a job to stop, from any server: its owner stops it at its next heartbeat. A job
    whose owner went silent is stopped here at once. False if the job is not running."""
    if not store.request_job_stop(run_id, who):
        return False
    claim = store.claim_background_job(owner_id(), stale_after, run_id=run_id)
    if claim is not None:
        take_over(store, claim, owner_id())  # sees the request: ends it as stopped
    return True


def stop_job(db_path: str | Path, run_id: int, who: str = "") -> bool:
    """Stop a running job, whichever server runs it; False if it is not running."""
    with Store(db_path) as store:
        asked = request_stop(store, run_id, who)
    if asked:
        stop_here(db_path, run_id)  # at once if it runs here, not at the next heartbeat
    return asked


class Supervisor:
    """A daemon thread that takes over this database's orphaned jobs every `poll_every` s."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        owner: str | None = None,
        poll_every: float = POLL_EVERY_S,
        stale_after: float = STALE_AFTER_S,
        beat_every: float = BEAT_EVERY_S,
    ):
        self.db_path, self.owner = db_path, owner or owner_id()
        self.poll_every, self.stale_after, self.beat_every = poll_every, stale_after, beat_every
        self.taken: list[Takeover] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reflection-jobs", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        self._closed.set()
        self._thread.join(timeout)

    def _gone(self) -> bool:
        """A SQLite file that was deleted (a test's temporary folder): nothing to watch."""
        return not is_db_url(self.db_path) and not Path(self.db_path).exists()

    def _loop(self) -> None:
        # A store per sweep, not one held open: an idle server keeps no connection for this.
        # While the database is away the supervisor says so once, looks again less and less
        # often (up to AWAY_POLL_MAX_S), and says when it is back.
        wait, away = self.poll_every, ""
        while not self._gone():
            try:
                with Store(self.db_path) as store:
                    self.taken += supervise_once(
                        store, owner=self.owner, stale_after=self.stale_after,
                        beat_every=self.beat_every,
                    )  # fmt: skip
                if away:
                    print(f"reflection jobs: {redact(str(self.db_path))} answers again", file=sys.stderr)  # fmt: skip
                wait, away = self.poll_every, ""
            except ReflectionError as exc:  # the database is away for a moment: look again later
                if str(exc) != away:
                    print(f"reflection jobs: {exc}", file=sys.stderr)
                wait, away = min(max(wait, self.poll_every) * 2, AWAY_POLL_MAX_S), str(exc)
            except Exception:
                traceback.print_exc()
            if self._closed.wait(wait):
                return


_SUPERVISORS: dict[str, Supervisor] = {}
_SUPERVISORS_LOCK = threading.Lock()


def ensure_supervisor(db_path: str | Path, **settings: Any) -> Supervisor:
    """This process's supervisor for a database, started on the first call."""
    key = db_key(db_path)
    with _SUPERVISORS_LOCK:
        found = _SUPERVISORS.get(key)
        if found is None or not found.alive:
            found = _SUPERVISORS[key] = Supervisor(db_path, **settings).start()
        return found


def close_all(timeout: float | None = 10.0) -> None:
    """Stop every supervisor of this process (a server shutting down, a test session ending
    before its database goes)."""
    with _SUPERVISORS_LOCK:
        found = list(_SUPERVISORS.values())
        _SUPERVISORS.clear()
    for supervisor in found:
        supervisor.close(timeout)
