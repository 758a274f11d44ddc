"""Twenty reviewers on one app process versus three, over one PostgreSQL.

Each reviewer signs in with a built-in account and reviews its assignments (overlap 2), all
at once, pressing the next key as soon as the next sample is drawn. With `--client protocol`
(the default) a reviewer is a Streamlit session driven over its websocket
(`tests/ws_reviewer.py`): the load is the app servers' own work. With `--client chromium`
each is a Debian Chromium of its own pressing keys; twenty of them on a 2-core machine
measure the browsers rather than the servers (load average 70-114). The same team and data run twice
in this process, on a fresh database each time: once with every reviewer on one
`reflection app`, once spread over three. Reported: decisions shown as saved per second (the
throughput), key press -> next sample (median and p95), and the ratio three / one. Both runs
are checked as the test does (`tests/team_load.py: check`): nothing lost or doubled, overlap
held, agreement equal to that computed from the decision rows.

A throw-away PostgreSQL cluster is started here (Debian's `postgresql`), as the tests do.

    python bench/bench_team_load.py --reviewers 20 --presses 10 [--client chromium]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from alpaca_data import alpaca_path, load_alpaca  # noqa: E402
from pg_cluster import PgCluster, pg_bin, server_memory  # noqa: E402
from team_load import app_servers, check, review_together, team_store  # noqa: E402
from ws_reviewer import review_over_protocol  # noqa: E402

OVERLAP = 2


def one_run(cluster: PgCluster, servers: int, args: argparse.Namespace) -> dict:
    reviewers = [f"r{n:02d}" for n in range(1, args.reviewers + 1)]
    url = cluster.new_database()
    with tempfile.TemporaryDirectory() as folder:
        team_store(url, Path(folder), reviewers, args.samples, OVERLAP, alpaca_path())
        with app_servers(url, servers, Path(folder)) as apps:
            if args.client == "protocol":
                outcome = review_over_protocol(apps, reviewers, args.presses)
            else:
                outcome = review_together(url, apps, reviewers, args.presses, wait_ms=120_000)
    figures = check(url, outcome, OVERLAP)
    waits = sorted(p.seconds for p in outcome.saved)
    return {
        "client": args.client,
        "servers": servers,
        "decisions": len(outcome.saved),
        "seconds": round(outcome.seconds, 1),
        "per_second": round(outcome.throughput, 2),
        "press_to_next_ms_median": round(statistics.median(waits) * 1000),
        "press_to_next_ms_p95": round(waits[int(0.95 * (len(waits) - 1))] * 1000),
        "agreement_items": figures["items"],
        "pressed_again": len(outcome.unanswered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--presses", type=int, default=10, help="per reviewer")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--servers", default="1,3", help="app processes per run, in order")
    parser.add_argument("--client", choices=("protocol", "chromium"), default="protocol")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    load_alpaca()  # prints which file the pairs come from
    bindir = pg_bin()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = PgCluster(bindir, server_memory()).start()
    results = []
    try:
        cluster.make_template()
        for servers in (int(n) for n in args.servers.split(",")):
            load = os.getloadavg()[0]
            started = time.monotonic()
            result = one_run(cluster, servers, args)
            result["load_before"] = round(load, 1)
            result["wall_s"] = round(time.monotonic() - started, 1)
            results.append(result)
            print(json.dumps(result))
    finally:
        cluster.stop()
    by_servers: dict[int, list[float]] = {}
    for result in results:
        by_servers.setdefault(result["servers"], []).append(result["per_second"])
    if len(by_servers) >= 2:
        fewest, most = min(by_servers), max(by_servers)
        ratio = statistics.median(by_servers[most]) / statistics.median(by_servers[fewest])
        print(f"throughput with {most} app processes: {ratio:.2f} x that with {fewest}"
              " (medians over the runs of each)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
