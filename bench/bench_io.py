"""Import and export speed on Alpaca-sized records, against a bare baseline in the same run.

Builds N records by repeating the real Alpaca pairs (alpaca_data.py: the whole file when it
is beside the clone, else the tests' subset; a suffix on each instruction keeps content hashes
distinct), then times:
  - import: `reflection.ingest.datasets.import_dataset` (validate all, hash, one transaction, FTS index)
    against a baseline of json.load + one bare sqlite3 executemany of the three fields;
  - export: `reflection.export.curated.export_dataset` to Alpaca JSON (undecided=original)
    against a baseline of SELECT of the three fields + json.dump.
Targets (issue 2): import of 52,000 records < 10 s, export of 50,000 < 10 s.

    python bench/bench_io.py [--records 52000] [--export-records 50000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alpaca_data import load_alpaca  # noqa: E402

from reflection.export.curated import export_dataset  # noqa: E402
from reflection.ingest.datasets import import_dataset  # noqa: E402
from reflection.store import Store  # noqa: E402


def build_records(n: int) -> list[dict]:
    base = load_alpaca()
    records = []
    for i in range(n):
        record = dict(base[i % len(base)])
        record["instruction"] = f"{record['instruction']} [{i // len(base)}]"
        records.append(record)
    return records


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def baseline_import(path: Path, db: Path) -> None:
    records = json.loads(path.read_text(encoding="utf-8"))
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE s (instruction TEXT, input TEXT, output TEXT)")
    with conn:
        conn.executemany(
            "INSERT INTO s VALUES (?, ?, ?)",
            [(r["instruction"], r["input"], r["output"]) for r in records],
        )
    conn.close()


def baseline_export(db: Path, out: Path, limit: int) -> None:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT instruction, input, output FROM s LIMIT ?", [limit]).fetchall()
    records = [{"instruction": a, "input": b, "output": c} for a, b, c in rows]
    out.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=52_000)
    parser.add_argument("--export-records", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "big.json"
        source.write_text(
            json.dumps(build_records(args.records), ensure_ascii=False), encoding="utf-8"
        )
        export_source = tmp / "export.json"
        export_source.write_text(
            json.dumps(build_records(args.export_records), ensure_ascii=False), encoding="utf-8"
        )

        base_import = timed(lambda: baseline_import(source, tmp / "base.db"))
        with Store(tmp / "ours.db") as store:
            ours_import = timed(lambda: import_dataset(store, source, dataset="big"))
            assert store.count_samples() == args.records
        base_export = timed(
            lambda: baseline_export(tmp / "base.db", tmp / "base.json", args.export_records)
        )
        with Store(tmp / "exp.db") as store:
            import_dataset(store, export_source, dataset="e")
            ours_export = timed(
                lambda: export_dataset(store, "e", tmp / "out.json", "alpaca", undecided="original")
            )
    size = source.stat().st_size if source.exists() else 0
    print(f"{'step':<8} {'records':>8} {'baseline s':>11} {'ours s':>8} {'ratio':>6} {'target':>8}")
    print(
        f"{'import':<8} {args.records:>8} {base_import:>11.2f} {ours_import:>8.2f} {ours_import / base_import:>6.1f} {'< 10 s':>8}"
    )
    print(
        f"{'export':<8} {args.export_records:>8} {base_export:>11.2f} {ours_export:>8.2f} {ours_export / base_export:>6.1f} {'< 10 s':>8}"
    )
    del size


if __name__ == "__main__":
    main()
