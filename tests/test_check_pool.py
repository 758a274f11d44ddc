"""CheckPool: content checks on worker processes give what one process gives, in order."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ALPACA_PATH

from reflection.scoring.check_pool import MIN_PARALLEL, CheckJob, CheckPool, check_all


def jobs() -> list[CheckJob]:
    """Every real answer as an original, and as a reflection of its neighbour's answer,
    cut off, looping or empty in turn (so that every check has work)."""
    outputs = [p["output"] for p in json.loads(ALPACA_PATH.read_text(encoding="utf-8"))]
    found = [CheckJob(o) for o in outputs]
    for i, o in enumerate(outputs):
        reflected = [o, o + " " + o * 3, "", "The better answer would be:"][i % 4]
        found.append(CheckJob(reflected, outputs[i - 1], "truncated" if i % 5 == 0 else "ok"))
    return found


def test_the_pool_gives_each_versions_checks_in_order():
    batch = jobs()
    assert len(batch) >= 2 * MIN_PARALLEL
    alone = check_all(batch)
    assert len({tuple(sorted(c.flags)) for c in alone}) > 4  # the checks differ from job to job
    with CheckPool(3) as pool:
        assert pool.run(batch) == alone
        processes = pool._pool._processes if pool._pool is not None else {}
        assert len(processes) == 3 and os.getpid() not in processes
        # Two batches on their way at once come back apart and in order.
        first, second = pool.submit(batch[::-1]), pool.submit(batch[:300])
        assert second.result() == alone[:300] and first.result() == alone[::-1]
    assert pool._pool is None  # closed with the block


def test_a_small_batch_or_one_worker_starts_no_process():
    batch = jobs()
    with CheckPool(4) as pool:
        assert pool.run(batch[: MIN_PARALLEL - 1]) == check_all(batch[: MIN_PARALLEL - 1])
        assert pool._pool is None
    with CheckPool(1) as pool:
        assert pool.run(batch) == check_all(batch) and pool._pool is None
    with pytest.raises(ValueError, match="workers must be 1 or more"):
        CheckPool(0)


def test_a_worker_killed_mid_batch_is_said_plainly():
    import signal

    from reflection.errors import ReflectionError

    batch = jobs() * 20  # seconds of work: the kill lands while it checks
    with CheckPool(2) as pool:
        pending = pool.submit(batch)
        assert pool._pool is not None
        os.kill(next(iter(pool._pool._processes)), signal.SIGKILL)
        with pytest.raises(ReflectionError, match="ended abruptly.*--workers 1"):
            pending.result()


def test_workers_never_run_the_callers_main_script(tmp_path, monkeypatch):
    """A Streamlit page (AppTest makes it `__main__`) or an unguarded script must not run
    again in each worker, as it would under multiprocessing's spawn or fork server."""
    import sys
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('x')\nraise SystemExit(3)\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    batch = jobs()
    with CheckPool(2) as pool:
        assert pool.run(batch) == check_all(batch)
    assert not marker.exists()
