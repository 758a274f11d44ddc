"""Assignment with overlap at scale: `assign_dataset` on a 1,000,000-sample dataset, overlap 3.

Builds a store of N samples (rows inserted directly: assignment never reads their text, so
the full-text index is left empty), then runs each step in a fresh process on its own copy
of the file, and reports wall time, that process's CPU time (user + system: what the step
costs whatever else the machine runs) and its peak RSS:

  - read_ids (baseline): stream the unassigned sample ids, CHUNK at a time, as assign does;
  - deal (baseline): the Dealer alone, N samples in chunks, no database;
  - write (baseline): N x overlap (sample id, reviewer) rows inserted with executemany into a
    bare table (no key, no index, one transaction a chunk): SQLite's floor for the writes;
  - assign: reflection.team.assign.assign_dataset, reviewers r0..r9, overlap 3: read, deal,
    write N x overlap rows (committed a chunk at a time) and the audit event.

After `assign` it checks what it wrote: N x overlap rows, `overlap` distinct reviewers on
every sample, loads within one of each other. Target (issue 13): assign of 1,000,000
samples with overlap 3 in <= 30 s; peak memory is reported, not targeted.

    python bench/bench_assign.py [--samples 1000000] [--overlap 3] [--reviewers 10]
                                 [--db PATH (reuse the built store)]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reflection.store import Store  # noqa: E402
from reflection.team import assign  # noqa: E402

TARGET_S = 30.0


def build_store(path: Path, n: int) -> None:
    with Store(path) as store:
        ds = store.ensure_dataset("bench")
        with store.transaction():
            store.conn.execute(
                "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?)"
                " INSERT INTO samples (dataset_id, position, instruction, output, content_hash,"
                " created_at) SELECT ?, i, 'Question ' || i, 'Answer ' || i, 'h' || i,"
                " '2025-01-01' FROM k",
                [n, ds.id],
            )


def reviewers(k: int) -> list[str]:
    return [f"r{i}" for i in range(k)]


def child(mode: str, db: Path, n: int, overlap: int, k: int) -> dict:
    """One measured step, in this (fresh) process."""
    started = time.perf_counter()
    result: dict = {}
    if mode == "deal":
        dealer = assign.Dealer(reviewers(k), overlap, seed=1)
        result["pairs"] = sum(
            len(dealer.pairs(range(start, min(n, start + assign.CHUNK))))
            for start in range(0, n, assign.CHUNK)
        )
    elif mode == "write":
        names = reviewers(k)
        with Store(db) as store:
            store.conn.execute("CREATE TABLE bare (sample_id INTEGER, reviewer TEXT)")
            for start in range(0, n, assign.CHUNK):
                rows = [(s, names[(s * overlap + j) % k])
                        for s in range(start, min(n, start + assign.CHUNK))
                        for j in range(overlap)]  # fmt: skip
                with store.transaction():
                    store.conn.executemany("INSERT INTO bare VALUES (?, ?)", rows)
    else:
        with Store(db) as store:
            ds = store.dataset("bench")
            if mode == "read_ids":
                after, seen = 0, 0
                while ids := store.unassigned_sample_ids(ds.id, after, assign.CHUNK):
                    seen, after = seen + len(ids), ids[-1]
                result["ids"] = seen
            else:
                done = assign.assign_dataset(store, ds.id, reviewers(k), overlap, seed=1)
                result["assignments"] = done.assignments
    result["seconds"] = time.perf_counter() - started
    used = os.times()
    result["cpu_seconds"] = used.user + used.system  # this process's own, whatever the load
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure(mode: str, db: Path, args) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--db", str(db),
               "--samples", str(args.samples), "--overlap", str(args.overlap),
               "--reviewers", str(args.reviewers)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(db: Path, n: int, overlap: int) -> str:
    with Store(db) as store:
        rows = store.scalar("SELECT count(*) FROM assignments WHERE state = 'active'")
        bad = store.scalar(
            "SELECT count(*) FROM (SELECT sample_id FROM assignments GROUP BY sample_id"
            " HAVING count(DISTINCT reviewer) != ?)",
            [overlap],
        )
        loads = list(store.assignment_loads(store.dataset("bench").id).values())
    ok = rows == n * overlap and bad == 0 and max(loads) - min(loads) <= 1
    return (
        f"{'ok' if ok else 'WRONG'}: {rows:,} rows, {bad} samples without {overlap} distinct"
        f" reviewers, loads {min(loads):,}..{max(loads):,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--db", type=Path, help="Reuse (or build once at) this store.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.db, args.samples, args.overlap, args.reviewers)))
        return

    folder = Path(tempfile.mkdtemp(prefix="bench_assign_"))
    try:
        source = args.db or folder / "source.db"
        if not source.exists():
            started = time.perf_counter()
            build_store(source, args.samples)
            print(f"built {args.samples:,} samples in {time.perf_counter() - started:.1f} s")
        rows = []
        for mode in ("read_ids", "deal", "write", "assign"):
            work = folder / f"{mode}.db"
            shutil.copyfile(source, work)
            rows.append((mode, measure(mode, work, args)))
        print(f"\nassign {args.samples:,} samples, overlap {args.overlap}, "
              f"{args.reviewers} reviewers (each step a fresh process)")  # fmt: skip
        print(f"{'step':<10} {'seconds':>8} {'CPU s':>7} {'peak RSS MiB':>13}")
        for mode, found in rows:
            print(f"{mode:<10} {found['seconds']:>8.2f} {found['cpu_seconds']:>7.2f}"
                  f" {found['peak_rss_mib']:>13.0f}")  # fmt: skip
        took, cpu = rows[-1][1]["seconds"], rows[-1][1]["cpu_seconds"]
        floor = sum(found["seconds"] for mode, found in rows[:-1])
        print(f"\nassign / (read_ids + deal + write) = {took / floor:.2f}"
              f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")  # fmt: skip
        verdict = "meets" if took <= TARGET_S else "MISSES"
        print(f"\nassign: {took:.1f} s wall ({cpu:.1f} s of CPU), {verdict} the target of"
              f" {TARGET_S:.0f} s")  # fmt: skip
        print(check(folder / "assign.db", args.samples, args.overlap))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
