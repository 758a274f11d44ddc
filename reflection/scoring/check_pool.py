"""Content checks of many versions on several cores.

`content_checks` is pure Python and one core's work: about 170 µs for an Alpaca answer, so
the 3,000,000 versions of a million samples take most of a first `suggest`. A `CheckPool`
splits a batch into contiguous slices for its worker processes and returns at once, so the
caller reads and writes the store while they check (`MissingChecks` sends the next chunk's
versions before it hands on the current one). The results come back in the batch's order,
the same `Checks` as one process gives. A batch too small to repay sending its texts
(MIN_PARALLEL versions) is checked in place, and no process starts until a batch needs one.

The workers are loky's (joblib's process pool): each starts as a fresh interpreter (fork and
exec), so none inherits the caller's threads (the app's server, a job's heartbeat) or open
database connections in whatever state they were, and none runs the caller's main script
again, as multiprocessing's spawn and fork server do (a Streamlit page would run once more in
every worker).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ReflectionError
from .checks import Checks, content_checks

if TYPE_CHECKING:
    from loky import ProcessPoolExecutor

MIN_PARALLEL = 256  # versions in a batch before it is shared out
MAX_WORKERS = 8  # the default's cap: beyond it the caller's own reads and writes dominate


class CheckJob(NamedTuple):
    """The arguments of one `content_checks` call."""

    output: str
    original_output: str | None = None
    status: str = "ok"
    reply: str = ""


def default_workers() -> int:
    """The cores this process may use (all of them where the system cannot say), at most
    MAX_WORKERS."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def check_all(jobs: Sequence[CheckJob]) -> list[Checks]:
    """`content_checks` of each job, in order, in this process."""
    return [
        content_checks(j.output, original_output=j.original_output, status=j.status, reply=j.reply)
        for j in jobs
    ]


def _check_pickled(jobs: bytes) -> bytes:
    """`check_all` in a worker. Jobs and checks travel as one pickle each way: loky pickles
    what it sends with cloudpickle, which visits every object in Python; the C pickler does
    a chunk's thousands of small objects at once."""
    return pickle.dumps(check_all(pickle.loads(jobs)), protocol=pickle.HIGHEST_PROTOCOL)


class Pending:
    """Checks on their way: `result()` gives them in the batch's order."""

    def __init__(self, done: list[Checks] | None = None, futures: Sequence[Future] = ()) -> None:
        self._done, self._futures = done, futures

    def result(self) -> list[Checks]:
        if self._done is None:
            try:
                self._done = [c for f in self._futures for c in pickle.loads(f.result())]
            except BrokenProcessPool as error:
                raise ReflectionError(
                    "a process making content checks ended abruptly (killed, or out of memory);"
                    " the checks saved so far are kept: run again, with fewer workers"
                    " (--workers 1 makes them in this process)"
                ) from error
        return self._done


class CheckPool:
    """`content_checks` over batches of versions. With `workers` 1 everything is checked in
    place, as it is asked for; with more, a batch of MIN_PARALLEL versions or more is shared
    out to that many worker processes while the caller goes on (`submit`). Close the pool (or
    use it as a context manager) to end its processes."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be 1 or more, not {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> CheckPool:
        return self

    def __exit__(self, error_type: object, *exc: object) -> None:
        self.close(cancel=error_type is not None)

    def submit(self, jobs: Sequence[CheckJob]) -> Pending:
        """Start checking `jobs`; the `Pending` gives their checks."""
        if self.workers == 1 or len(jobs) < MIN_PARALLEL:
            return Pending(done=check_all(jobs))
        if self._pool is None:
            from loky import ProcessPoolExecutor  # here: most runs never start a process

            self._pool = ProcessPoolExecutor(self.workers)
        size = -(-len(jobs) // self.workers)
        pool = self._pool
        slices = (pickle.dumps(jobs[i : i + size], protocol=pickle.HIGHEST_PROTOCOL)
                  for i in range(0, len(jobs), size))  # fmt: skip
        return Pending(futures=[pool.submit(_check_pickled, part) for part in slices])

    def run(self, jobs: Sequence[CheckJob]) -> list[Checks]:
        """The checks of `jobs`, in their order."""
        return self.submit(jobs).result()

    def close(self, cancel: bool = False) -> None:
        """End the workers: when they are done, or at once with `cancel` (after an error)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, kill_workers=cancel)
            self._pool = None
