"""Background work started from the app: reflection or scoring, claimed through the database.

`start_job` records a `job` run and its row (the spec, without the API key; which process owns
it; a heartbeat) and runs it in a thread of this process (`runner.py`). Any session on any
app server polls `job_state` or `jobs` (`state.py`) and may stop it (`stop_job`). Each app
process runs a `Supervisor` (`supervisor.py`) that takes over the jobs of a server that died
and resumes them where they were (`spec.py` rebuilds a job from its row).
"""

from .runner import BEAT_EVERY_S, launch, local_jobs, owner_id, start_job, wait_job
from .selection import SELECTIONS, Selection, parse_ids, select_samples
from .spec import KEY_FROM_ENV, KEY_NONE, KEY_TYPED, TASKS, JobSpec, key_source, recover_key
from .state import ACTIVE, STALE_AFTER_S, JobState, job_state, jobs, reap, where
from .supervisor import (
    POLL_EVERY_S,
    Supervisor,
    Takeover,
    close_all,
    ensure_supervisor,
    request_stop,
    stop_job,
    supervise_once,
    take_over,
)

__all__ = [
    "ACTIVE",
    "BEAT_EVERY_S",
    "KEY_FROM_ENV",
    "KEY_NONE",
    "KEY_TYPED",
    "POLL_EVERY_S",
    "SELECTIONS",
    "STALE_AFTER_S",
    "TASKS",
    "JobSpec",
    "JobState",
    "Selection",
    "Supervisor",
    "Takeover",
    "close_all",
    "ensure_supervisor",
    "job_state",
    "jobs",
    "key_source",
    "launch",
    "local_jobs",
    "owner_id",
    "parse_ids",
    "recover_key",
    "reap",
    "request_stop",
    "select_samples",
    "start_job",
    "stop_job",
    "supervise_once",
    "take_over",
    "wait_job",
    "where",
]
