"""Import and export at scale: wall time, CPU time and peak memory, against bare baselines.

Builds N Alpaca-shaped records (the real Alpaca pairs repeated, a suffix keeping content
hashes distinct) as JSONL in a temporary folder, streaming, then runs each step in its own
child process and reads the child's peak RSS from `os.wait4` (getrusage of that child):

  - baseline import: json.loads per line + executemany of the three fields, one transaction;
  - import <fmt>: `import_dataset` (validate, hash, stage, publish in one transaction), then
    the full-text index built behind it (`Store.index_search_backlog`), timed apart;
  - baseline export: SELECT of the three fields + json.dumps per row to JSONL;
  - export <fmt>: `export_dataset` (undecided=original) from the store the JSONL import built;
  - import-candidates: a second file of the same records with new outputs, aligned by
    position (`import_candidates --match position`) into that store, against the import
    baseline.

With `--pg URL` (or `--pg auto`: a throw-away cluster on 127.0.0.1, as the tests start one)
the JSONL import, the export and import-candidates run on PostgreSQL as well, each against
its own baseline on the same server (psycopg `executemany` of the three fields in one
transaction; a server-side cursor + json.dumps). Peak memory there is the client's: the
server's own is PostgreSQL's (shared buffers), the same for ours and the baseline.

Ratios are ours ÷ the baseline of the same run (wall and CPU: the machine is shared). Goals
(issue 14): peak memory <= 1 GB at any size; import and export <= 3 x the baseline,
import-candidates <= 4 x.

    python bench/bench_io.py --records 1000000
    python bench/bench_io.py --records 200000 --formats jsonl,json,csv,parquet,hf
    python bench/bench_io.py --records 1000000 --formats jsonl --pg auto
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alpaca_data import load_alpaca  # noqa: E402

SUFFIX = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet", "hf": ""}
CHUNK = 5000


def build_jsonl(path: Path, n: int, revised: bool = False) -> None:
    """N records; `revised`: the same with a new output each (reflections aligned by position)."""
    base = load_alpaca()
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            record = dict(base[i % len(base)])
            record["instruction"] = f"{record['instruction']} [{i // len(base)}]"
            if revised:
                record["output"] += "\n\nIn short: the answer above, checked step by step."
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _records(path: Path):
    with open(path, "rb") as handle:
        for line in handle:
            yield json.loads(line)


def build_format(jsonl: Path, fmt: str, out: Path) -> None:
    """The same records in another container (written by our own streaming writers)."""
    from reflection.formats.writers import write_records

    write_records(out, _records(jsonl), fmt)


# --- the steps, each run in a child process --------------------------------------------------


def _baseline_rows(source: Path):
    """The baselines' reading: json.loads per line, the three fields, CHUNK rows at a time."""
    with open(source, "rb") as handle:
        rows = []
        for line in handle:
            record = json.loads(line)
            rows.append((record["instruction"], record["input"], record["output"]))
            if len(rows) == CHUNK:
                yield rows
                rows = []
        yield rows


def step_baseline_import(folder: Path, source: Path) -> dict:
    conn = sqlite3.connect(folder / "baseline.db")
    conn.execute("CREATE TABLE s (instruction TEXT, input TEXT, output TEXT)")
    with conn:
        for rows in _baseline_rows(source):
            conn.executemany("INSERT INTO s VALUES (?, ?, ?)", rows)
    conn.close()
    return {}


def step_import(folder: Path, source: Path, fmt: str, target: str | None = None) -> dict:
    from reflection.ingest.datasets import import_dataset
    from reflection.store import Store

    with Store(target or folder / f"ours-{fmt}.db") as store:
        start = time.perf_counter()
        result = import_dataset(store, source, dataset="bench", fmt=None if fmt != "hf" else "hf",
                                index=False)  # fmt: skip
        published = time.perf_counter()
        store.index_search_backlog()
        indexed = time.perf_counter()
    return {"added": result.added, "published_s": published - start,
            "index_s": indexed - published}  # fmt: skip


def step_baseline_export(folder: Path) -> dict:
    conn = sqlite3.connect(folder / "ours-jsonl.db")
    with open(folder / "baseline-out.jsonl", "w", encoding="utf-8") as out:
        cursor = conn.execute(
            "SELECT instruction, input, output FROM samples ORDER BY position, id"
        )
        while rows := cursor.fetchmany(CHUNK):
            out.write("".join(json.dumps({"instruction": a, "input": b, "output": c},
                                         ensure_ascii=False) + "\n" for a, b, c in rows))  # fmt: skip
    conn.close()
    return {}


def step_export(folder: Path, fmt: str, target: str | None = None) -> dict:
    from reflection.export.curated import export_dataset
    from reflection.store import Store

    fmt_name = "alpaca" if fmt in ("json", "jsonl") else fmt
    with Store(target or folder / "ours-jsonl.db") as store:
        result = export_dataset(store, "bench", folder / f"out{SUFFIX[fmt] or '_hf'}", fmt_name,
                                undecided="original")  # fmt: skip
    return {"written": result.written}


def step_candidates(folder: Path, target: str | None = None) -> dict:
    from reflection.ingest.adopt import import_candidates
    from reflection.store import Store

    with Store(target or folder / "ours-jsonl.db") as store:
        result = import_candidates(store, folder / "revised.jsonl", match="position")
    return {"added": result.candidates_added}


def step_prepare_pg(url: str) -> dict:
    """Migrates a new database (untimed); refuses one that holds the bench's dataset."""
    from reflection.store import Store

    with Store(url) as store:
        if any(d.name == "bench" for d in store.datasets()):
            raise SystemExit(
                f"{_redact(url)}: holds a dataset 'bench' already; give an empty database"
            )
    return {}


def step_baseline_import_pg(url: str, source: Path) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:  # one transaction
        conn.execute("DROP TABLE IF EXISTS bench_baseline")
        conn.execute("CREATE TABLE bench_baseline (instruction TEXT, input TEXT, output TEXT)")
        with conn.cursor() as cursor:
            for rows in _baseline_rows(source):
                cursor.executemany("INSERT INTO bench_baseline VALUES (%s, %s, %s)", rows)
    return {}


def step_baseline_export_pg(url: str, folder: Path) -> dict:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor(name="bench_out") as cursor:
        cursor.execute("SELECT instruction, input, output FROM samples ORDER BY position, id")
        with open(folder / "baseline-out-pg.jsonl", "w", encoding="utf-8") as out:
            while rows := cursor.fetchmany(CHUNK):
                out.write("".join(json.dumps({"instruction": a, "input": b, "output": c},
                                             ensure_ascii=False) + "\n" for a, b, c in rows))  # fmt: skip
    return {}


def child(args) -> None:
    folder = Path(args.folder)
    start, cpu = time.perf_counter(), time.process_time()
    name, _, fmt = args.child.partition(":")
    if name == "build":
        extra = build_format(
            folder / "records.jsonl", fmt, folder / f"records{SUFFIX[fmt] or '_hf'}"
        )
        extra = {}
    elif name == "baseline-import":
        extra = step_baseline_import(folder, folder / "records.jsonl")
    elif name == "import":
        extra = step_import(folder, folder / f"records{SUFFIX[fmt] or '_hf'}", fmt)
    elif name == "candidates":
        extra = step_candidates(folder)
    elif name == "baseline-export":
        extra = step_baseline_export(folder)
    elif name == "pg-prepare":
        extra = step_prepare_pg(args.pg)
    elif name == "pg-baseline-import":
        extra = step_baseline_import_pg(args.pg, folder / "records.jsonl")
    elif name == "pg-import":
        extra = step_import(folder, folder / "records.jsonl", "jsonl", args.pg)
    elif name == "pg-baseline-export":
        extra = step_baseline_export_pg(args.pg, folder)
    elif name == "pg-export":
        extra = step_export(folder, "jsonl", args.pg)
    elif name == "pg-candidates":
        extra = step_candidates(folder, args.pg)
    else:
        extra = step_export(folder, fmt)
    print(json.dumps({"wall_s": time.perf_counter() - start,
                      "cpu_s": time.process_time() - cpu, **extra}))  # fmt: skip


def run_child(folder: Path, step: str, pg: str | None = None) -> dict:
    """One step in a fresh process: its figures and its peak RSS (MB). Linux counts the RSS
    a child had before exec (a copy of this process) in its peak, so this process imports
    nothing heavy and builds nothing big."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", step, "--folder", str(folder),
         *(["--pg", pg] if pg else [])],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"step {step} failed ({process.returncode})")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["rss_mb"] = usage.ru_maxrss / 1024  # KB on Linux
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=52_000)
    parser.add_argument(
        "--formats", default="jsonl,json", help="comma-separated: " + ",".join(SUFFIX)
    )
    parser.add_argument("--folder", help="work here (default: a temporary folder, removed)")
    parser.add_argument("--no-candidates", action="store_true", help="skip import-candidates")
    parser.add_argument(
        "--pg", help="also on PostgreSQL: a database URL (emptied first), or 'auto' to start "
        "a throw-away cluster on 127.0.0.1 (Debian's postgresql package)",
    )  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with _postgres(args.pg) as url:
        args.pg = url
        return run(args)


@contextlib.contextmanager
def _postgres(pg: str | None):
    """The database URL to bench PostgreSQL on: none, the one given, or a throw-away cluster's."""
    if pg != "auto":
        yield pg
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_cluster import throwaway_database

    with throwaway_database("bench") as url:
        yield url


class _Rows(list):
    """The table's rows, each also said on stderr as it is measured: a 10M run takes an hour,
    and a step that fails late (a full disk) must not take the earlier figures with it."""

    def append(self, row) -> None:
        step, fmt, figures, baseline = row
        print(f"{step} {fmt}: {figures['wall_s']:.1f} s, {figures['rss_mb']:.0f} MB,"
              f" {figures['wall_s'] / baseline['wall_s']:.2f} x base {json.dumps(figures)}",
              file=sys.stderr, flush=True)  # fmt: skip
        super().append(row)


def _drop(folder: Path, *names: str) -> None:
    """Remove files (and a database's WAL) no later step reads: at 10M records the folder
    would otherwise hold ~60 GB at once."""
    import shutil

    for name in names:
        for path in (folder / name, folder / f"{name}-wal", folder / f"{name}-shm"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def run(args) -> None:
    formats = [f for f in args.formats.split(",") if f]
    if "jsonl" not in formats:
        formats.insert(0, "jsonl")  # the export steps read the store its import built
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        source = folder / "records.jsonl"
        build_jsonl(source, args.records)
        size_mb = source.stat().st_size / 1e6
        for fmt in formats:
            if fmt != "jsonl":  # in a child too: this process stays small (see run_child)
                run_child(folder, f"build:{fmt}")
        rows = _Rows()
        base = run_child(folder, "baseline-import")
        _drop(folder, "baseline.db")
        rows.append(("import", "baseline", base, base))
        for fmt in formats:
            ours = run_child(folder, f"import:{fmt}")
            if fmt != "jsonl":  # the export steps read the store the JSONL import built
                _drop(folder, f"ours-{fmt}.db", f"records{SUFFIX[fmt] or '_hf'}")
            rows.append(("import", fmt, ours, base))
        base_out = run_child(folder, "baseline-export")
        _drop(folder, "baseline-out.jsonl")
        rows.append(("export", "baseline", base_out, base_out))
        for fmt in formats:
            rows.append(("export", fmt, run_child(folder, f"export:{fmt}"), base_out))
            _drop(folder, f"out{SUFFIX[fmt] or '_hf'}")
        if not args.pg:  # the PostgreSQL steps read the records again
            _drop(folder, "records.jsonl")
        if not args.no_candidates:
            build_jsonl(folder / "revised.jsonl", args.records, revised=True)
            rows.append(("import-candidates", "jsonl", run_child(folder, "candidates"), base))
        if args.pg:
            run_child(folder, "pg-prepare", args.pg)
            pg_base = run_child(folder, "pg-baseline-import", args.pg)
            rows.append(("import", "pg base", pg_base, pg_base))
            rows.append(("import", "pg jsonl", run_child(folder, "pg-import", args.pg), pg_base))
            pg_out = run_child(folder, "pg-baseline-export", args.pg)
            rows.append(("export", "pg base", pg_out, pg_out))
            rows.append(("export", "pg jsonl", run_child(folder, "pg-export", args.pg), pg_out))
            if not args.no_candidates:
                figures = run_child(folder, "pg-candidates", args.pg)
                rows.append(("import-candidates", "pg jsonl", figures, pg_base))
    if args.pg:
        print(f"PostgreSQL: {_redact(args.pg)}; its CPU time is the server's, not in 'CPU s'")
    print(f"{args.records:,} records, {size_mb:,.0f} MB of JSONL, {os.cpu_count()} cores,"
          f" load average {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print(
        "| step   | format   |  records |  wall s |  CPU s | peak MB | x base (wall) | x base (CPU) | notes"
    )
    print(
        "|--------|----------|----------|---------|--------|---------|---------------|--------------|------"
    )
    for step, fmt, figures, baseline in rows:
        notes = ""
        if "added" in figures and step == "import-candidates":
            notes = f"{figures['added']:,} candidates added"
        if "published_s" in figures:
            notes = (f"published in {figures['published_s']:.1f} s, then the search index"
                     f" {figures['index_s']:.1f} s")  # fmt: skip
        print(f"| {step:<17} | {fmt:<8} | {args.records:>8} | {figures['wall_s']:>7.2f} |"
              f" {figures['cpu_s']:>6.2f} | {figures['rss_mb']:>7.0f} |"
              f" {figures['wall_s'] / baseline['wall_s']:>13.2f} |"
              f" {figures['cpu_s'] / baseline['cpu_s']:>12.2f} | {notes}")  # fmt: skip


def _redact(url: str) -> str:
    """The URL without its password (this process imports nothing of ours: see run_child)."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


if __name__ == "__main__":
    main()
