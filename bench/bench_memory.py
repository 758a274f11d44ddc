"""Peak memory of every command that walks a dataset, on a store of 1,000,000 samples or more.

Issue 14's first goal: each command keeps its peak memory (max RSS) under 1 GB at 1M and at
10M samples. Import, import-candidates and export are measured by bench_io.py; this measures
the rest on a copy of a review store built by bench_app.py's builder (two candidates, ~8
scores and a suggestion a sample, 10 % decided):

  - stats, and stats --recount (every kept count recounted);
  - score --metric text --limit N: what is already scored is looked up a chunk of samples at
    a time and the versions are read a chunk at a time, so nothing held grows with the limit;
    the limit keeps the run minutes long (text scores of 1,000,000 samples take an hour
    here, most of it the text statistics and committing ~12 scores a version);
  - suggest --rule threshold and --rule topk (a ranking of every sample) over every sample
    (the bench store has IFD but no r-IFD, which the selective rule needs);
  - bulk accept-suggested, its preview and then --apply;
  - spotcheck create (stratified by kind) and show;
  - assign, three reviewers a sample, and progress;
  - reflect --limit N against the fake OpenAI server of the tests on 127.0.0.1 (latency 0):
    a dataset of millions is selected from, only N are sent, so what grows with the dataset
    shows while the run stays minutes long; then reflect --undecided --limit N, which first
    finds every undecided sample (the Run page's "Undecided" job goes the same way);
  - export of the curated set (JSONL).

Each is its own `python -m reflection` process; its peak RSS comes from wait4's rusage. The
baseline in the same run: the same interpreter importing the CLI and exiting (`--help`),
which is what any command costs before it touches the store.

    python bench/bench_memory.py --db /tmp/b1m.db [--samples 1000000] [--reflect 20000]
        [--score 100000] [--skip suggest,...] [--work DIR] [--json PATH]

--db: a store holding the dataset "bench" (built there at --samples if missing, in chunks of
200,000 samples with a 3 GB page cache; --short-texts gives every text a few words). It is copied
into --work first (the commands write), so it is left as it was; --in-place runs on it
instead, for a store too large to copy beside itself (10M samples).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_app import build_store, has_bench  # noqa: E402
from oracle_server import OracleServer  # noqa: E402

LIMIT_MB = 1024


def run(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Seconds, peak RSS in MB and the last output line of `python -m reflection argv`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "reflection", *argv],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    took = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"reflection {' '.join(argv)} failed:\n{output[-3000:]}")
    lines = [line for line in output.splitlines() if line.strip()]
    return took, usage.ru_maxrss / 1024, (lines[-1] if lines else "")[:110]


def copy_store(source: Path, target: Path) -> None:
    """The store's file, checkpointed first so that the copy is whole."""
    with sqlite3.connect(source) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(source, target)


def steps(
    db: str, oracle_url: str, reflect: int, score: int, out: Path
) -> list[tuple[str, list, dict]]:
    common = ["--db", db, "--dataset", "bench"]
    return [
        ("baseline: the CLI imported (--help)", ["--help"], {}),
        ("stats", ["stats", "--db", db], {}),
        ("stats --recount", ["stats", "--db", db, "--recount"], {}),
        (
            f"score --metric text --limit {score:,}",
            ["score", *common, "--metric", "text", "--limit", str(score)],
            {},
        ),  # fmt: skip
        (
            "suggest --rule threshold (ifd_ppl<1)",
            ["suggest", *common, "--rule", "threshold", "--where", "ifd_ppl<1"],
            {},
        ),  # fmt: skip
        (
            "suggest --rule topk (ifd_ppl, 30 %)",
            ["suggest", *common, "--rule", "topk", "--percent", "30", "--metric", "ifd_ppl"],
            {},
        ),  # fmt: skip
        ("bulk accept-suggested (preview)", ["bulk", *common, "accept-suggested"], {}),
        ("bulk accept-suggested --apply", ["bulk", *common, "accept-suggested", "--apply"], {}),
        (
            "spotcheck create --stratify kind",
            ["spotcheck", "create", "memory", *common, "--size", "1000", "--stratify", "kind"],
            {},
        ),  # fmt: skip
        ("spotcheck show", ["spotcheck", "show", "memory", *common], {}),
        (
            "assign --overlap 3",
            [
                "assign",
                *common,
                "--overlap",
                "3",
                "--reviewers",
                "ana,ben,cy,dee,eve,fay,gus,hal,ivy,jo",
            ],
            {},
        ),  # fmt: skip
        ("progress", ["progress", *common], {}),
        *(
            (
                f"reflect {chosen}--limit {reflect:,} (fake oracle)",
                [
                    "reflect",
                    *common,
                    "--mode",
                    "response",
                    "--model",
                    "fake",
                    *chosen.split(),
                    "--limit",
                    str(reflect),
                    "--concurrency",
                    "64",
                    "--yes",
                ],
                {"OPENAI_BASE_URL": oracle_url, "OPENAI_API_KEY": "sk-bench"},
            )
            for chosen in ("", "--undecided ")
        ),  # fmt: skip
        ("export --provenance (JSONL)", ["export", "--out", str(out), *common, "--provenance"], {}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--reflect", type=int, default=20_000, help="samples reflect sends")
    parser.add_argument("--score", type=int, default=100_000, help="samples text-scored")
    parser.add_argument("--skip", default="", help="comma-separated first words of steps to skip")
    parser.add_argument("--work", type=Path, help="folder for the copy (default: a temp one)")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--short-texts",
        action="store_true",
        help="build the store with a few words a text (10M: 33 GB, not 61)",
    )
    parser.add_argument("--in-place", action="store_true",
                        help="run on --db itself, not a copy (a store too large to copy beside"
                        " itself: the commands write to it)")  # fmt: skip
    args = parser.parse_args()
    if not args.db.exists() or not has_bench(args.db):
        started = time.perf_counter()
        build_store(args.db, args.samples, chunk=200_000, short=args.short_texts,
                    cache_mb=3072)  # fmt: skip
        print(f"built {args.db} in {time.perf_counter() - started:.0f} s", flush=True)
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="bench_memory_", dir=args.work))
    rows = []
    try:
        db = args.db if args.in_place else work / "copy.db"
        if not args.in_place:
            started = time.perf_counter()
            copy_store(args.db, db)
            print(f"copied the store in {time.perf_counter() - started:.0f} s", flush=True)
        load = os.getloadavg()[0]
        with OracleServer(latency=0.0) as oracle:
            for name, argv, env in steps(
                str(db), oracle.base_url, args.reflect, args.score, work / "o.jsonl"
            ):
                if name.split()[0] in skip:
                    continue
                took, rss, last = run(argv, env)
                rows.append({"step": name, "seconds": took, "peak_rss_mb": rss, "said": last})
                print(f"{name}: {took:.1f} s, {rss:.0f} MB  ({last})", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0]["peak_rss_mb"]
    print(f"\nload average {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| command | wall | peak RSS | × the CLI's own | under 1 GB |\n|---|---:|---:|---:|---|")
    for row in rows:
        ok = "yes" if row["peak_rss_mb"] <= LIMIT_MB else "**no**"
        print(f"| {row['step']} | {row['seconds']:.1f} s | {row['peak_rss_mb']:.0f} MB"
              f" | {row['peak_rss_mb'] / base:.2f} | {ok} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
