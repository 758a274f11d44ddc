"""Dashboard speed on a 100,000-sample store: SQL aggregates against loading the tables.

Uses bench_app's store (N samples, two candidates each, ~8 scores a sample, 10 % decided) and
times, median of repeats:

  - baseline_load: what a page that loads whole tables would do: every score of the dataset
    with its version kind into pandas, then the same histograms, IFD shift and flag counts;
  - dashboard_data: reflection.review.dashboard.dashboard_data (aggregated in SQL, distributions thinned
    to every k-th sample past 10,000 samples);
  - figures: building the plotly figures from those frames;
  - page_cold / page_warm: pages/3_Dashboard.py under AppTest with st.cache_data cleared before
    each run, and with the cache filled (the key is the dataset and Store.version()).

Target (issue 5): the dashboard renders in <= 1.5 s at 100,000 samples.

    python bench/bench_dashboard.py [--samples 100000] [--repeats 5] [--db PATH (reuse)]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import streamlit as st  # noqa: E402
from bench_app import build_store  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from reflection.review import dashboard, figures  # noqa: E402
from reflection.store import Store  # noqa: E402

PAGE = str(ROOT / "pages" / "3_Dashboard.py")


def baseline_load(store: Store, dataset_id: int) -> dict:
    """The whole-table way: read every score row of the dataset, aggregate in pandas."""
    scores = pd.read_sql_query(
        "SELECT sc.sample_id, sc.candidate_id, sc.metric, sc.scorer, sc.value,"
        " coalesce(c.kind, 'original') AS version FROM scores sc"
        " JOIN samples s ON s.id = sc.sample_id LEFT JOIN candidates c ON c.id = sc.candidate_id"
        " WHERE s.dataset_id = ?",
        store.conn,
        params=[dataset_id],
    )
    hist = {}
    for (metric, version), part in scores.groupby(["metric", "version"]):
        hist[(metric, version)] = np.histogram(part["value"].dropna(), bins=dashboard.BINS)
    ifd = scores[scores.metric == "ifd_ppl"]
    original = ifd[ifd.candidate_id == 0].set_index("sample_id")["value"]
    cands = ifd[ifd.candidate_id != 0]
    shift = cands["value"].to_numpy() - original.reindex(cands["sample_id"]).to_numpy()
    flags = {
        "misaligned": ifd[ifd.value >= 1]["sample_id"].nunique(),
        "drift": scores[(scores.metric == "drift") & (scores.value < 0.5)]["sample_id"].nunique(),
    }
    return {"hist": hist, "shift": np.histogram(shift[~np.isnan(shift)], bins=30), "flags": flags}


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def page_run(cold: bool) -> None:
    if cold:
        st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    if at.exception:
        raise SystemExit(f"{PAGE} failed: {at.exception[0].message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="reuse (or build once into) this database")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="bench_dashboard_")) / "bench.db"
    if not db.exists():
        start = time.perf_counter()
        build_store(db, args.samples)
        print(f"built {db} ({args.samples:,} samples) in {time.perf_counter() - start:.1f} s")
    os.environ["REFLECTION_DB"] = str(db)
    with Store(db) as store:
        dataset = store.datasets()[0]
        data = dashboard.dashboard_data(store, dataset.id)  # warm the OS page cache for both
        rows = {
            "baseline_load": timed(lambda: baseline_load(store, dataset.id), args.repeats),
            "dashboard_data": timed(
                lambda: dashboard.dashboard_data(store, dataset.id), args.repeats
            ),
            "figures": timed(lambda: figures.figures(data), args.repeats),
        }
    page_run(cold=True)  # imports, first plotly use
    rows["page_cold"] = timed(lambda: page_run(cold=True), args.repeats)
    rows["page_warm"] = timed(lambda: page_run(cold=False), args.repeats)

    base = statistics.median(rows["baseline_load"])
    print(f"\nDashboard at {dataset.sample_count:,} samples (ms, median of {args.repeats})")
    print(f"{'step':<16}{'median':>9}{'min':>9}{'vs baseline':>13}")
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"{name:<16}{med:>9.1f}{min(times):>9.1f}{med / base:>12.2f}x")
    cold = statistics.median(rows["page_cold"])
    print(f"\npage_cold {cold:.0f} ms vs target 1500 ms: {'ok' if cold <= 1500 else 'OVER'}")


if __name__ == "__main__":
    main()
