"""An app server in miniature, for the kill test: starts a reflection job, prints its run id,
and waits to be killed (tests/test_jobs_takeover.py).

    python tests/job_child.py DATABASE DATASET_ID BASE_URL
"""

from __future__ import annotations

import sys
import time

from reflection.jobs import JobSpec, start_job
from reflection.reflect.settings import OracleConfig


def main() -> None:
    target, dataset_id, base_url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    oracle = OracleConfig(model="fake-oracle", base_url=base_url, concurrency=2)
    run_id = start_job(target, JobSpec("reflect", dataset_id, oracle=oracle), beat_every=0.2)
    print(run_id, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
