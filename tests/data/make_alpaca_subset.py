"""Redraw tests/data/alpaca_subset.json from the 3,111-pair Alpaca file.

    python tests/data/make_alpaca_subset.py [../shared/data/alpaca_cherry_3k.json]

Keeps every 10th record (positions 0, 10, ..., 3110: 312 pairs), in the file's order and
unchanged: with and without `input`, short and long answers (the longest, 4,142 characters,
is position 1910), code, tables and non-ASCII text, as the whole file has them. Written as
the source file is (indent 4, non-ASCII as \\u escapes), so each record's text is byte for
byte the source's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "shared" / "data" / "alpaca_cherry_3k.json"
STEP = 10


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    records = json.loads(source.read_text(encoding="utf-8"))
    subset = records[::STEP]
    target = HERE / "alpaca_subset.json"
    target.write_text(json.dumps(subset, indent=4) + "\n", encoding="utf-8")
    with_input = sum(1 for r in subset if r["input"])
    print(f"{target}: {len(subset)} of {len(records)} records, {with_input} with input")


if __name__ == "__main__":
    main()
