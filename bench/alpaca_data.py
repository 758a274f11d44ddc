"""The real Alpaca pairs the benchmarks repeat: the whole file when it is there, else the subset.

The 3,111 pairs live outside the clone, at ../shared/data/alpaca_cherry_3k.json; a fresh clone
has the 312 of tests/data/alpaca_subset.json (every 10th of them; CC BY-NC 4.0, see
tests/data/LICENSE-alpaca.md). Both hold the same kinds of record; the subset repeats ten
times as often to reach a size, so a figure measured on it can differ a little. Every
benchmark prints which file it read, the first line of its report.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL = ROOT.parent / "shared" / "data" / "alpaca_cherry_3k.json"
SUBSET = ROOT / "tests" / "data" / "alpaca_subset.json"


def alpaca_path() -> Path:
    """The whole file when it is beside the clone, else the subset shipped with the tests."""
    return FULL if FULL.exists() else SUBSET


@cache
def load_alpaca(path: Path | None = None) -> list[dict]:
    """The records (read-only: copy before changing), after saying where they came from."""
    path = path or alpaca_path()
    records = json.loads(path.read_text(encoding="utf-8"))
    print(f"data: {path} ({len(records):,} Alpaca pairs)", flush=True)
    return records
