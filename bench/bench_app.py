"""Speed of the review app on a 100,000-sample store, measured with Streamlit's AppTest.

Builds a store of N samples (the real Alpaca pairs repeated, a suffix keeping content hashes
distinct), two candidates each (instruction- and response-reflected), about 8 scores per
sample (IFD and judge for every version, drift for candidates, a length), a suggestion for
each, and 10% decided. Then times script runs (AppTest `run()` wall time: the script run plus the harness, median of repeats):

  - review_open: the Review page's first run in a session (queue snapshot of all ids);
  - next_sample: pressing Next (load the sample, its candidates, scores, the word diffs);
  - decide_next: pressing Accept (append the review, commit, then show the next sample);
  - filter_*: changing one queue filter (status, flag, score range, full-text search, order);
  - dashboard_cold: pages/3_Dashboard.py with Streamlit's data cache emptied (the first
    visitor's wait); dashboard: the same page, cached;
  - bulk_preview_cold: pages/2_Bulk.py's first run with the data cache emptied, which counts
    and shows examples of its first rule (accept the suggestion where IFD < 1, drift low);
  - home: app.py.

Baselines in the same run: `empty_page` (AppTest rerunning a one-button script: the
harness's own cost per run) and the same Review page on a 64-sample store. Filter queries are also timed alone
(library call, no Streamlit: the first 500-id window a filter change loads) as `query_*`. Targets (issue 5): next sample <= 200 ms,
filtering <= 50 ms, dashboard <= 1.5 s.

    python bench/bench_app.py [--samples 100000] [--repeats 15] [--db PATH or URL (reuse)]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from alpaca_data import load_alpaca  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from reflection import Candidate, Review, Sample, Score, Store, Suggestion  # noqa: E402
from reflection.config import is_db_url  # noqa: E402
from reflection.review.queue import WINDOW, QueueQuery, ScoreRange  # noqa: E402

REVIEW = str(ROOT / "pages" / "1_Review.py")
DASHBOARD = ROOT / "pages" / "3_Dashboard.py"
BULK = ROOT / "pages" / "2_Bulk.py"
HOME = str(ROOT / "app.py")
TARGETS_MS = {"next_sample": 200, "decide_next": 200, "filter": 50, "dashboard": 1500,
              "dashboard_cold": 2000, "bulk_preview_cold": 2000}  # fmt: skip


def _sample(base: list[dict], i: int) -> Sample:
    record = base[i % len(base)]
    return Sample(
        instruction=f"{record['instruction']} [{i // len(base)}]",
        input=record.get("input", ""),
        output=record["output"],
        position=i,
        flags=["odd_source"] if i % 997 == 0 else [],
    )


def short_texts() -> list[dict]:
    """Records as many as the Alpaca pairs, a few words each: the same rows and scores in a
    fraction of the bytes (a 10M store with Alpaca texts takes 61 GB, with these 33 GB)."""
    return [{"instruction": f"Name a colour number {i}.", "input": "" if i % 3 else "Be brief.",
             "output": f"Colour {i} is a shade of blue."} for i in range(3111)]  # fmt: skip


def build_store(
    path: Path | str,
    n: int,
    seed: int = 7,
    chunk: int = 20_000,
    *,
    short: bool = False,
    cache_mb: int = 0,
) -> None:
    """The bench store, written a chunk of samples at a time (memory stays flat).

    `cache_mb` gives the builder's connection that much page cache (SQLite), for large
    stores: each chunk's commit rewrites every page its rows touched in the score indexes,
    and larger chunks with a cache that holds them touch each page once. 10M samples with
    short texts, chunks of 200,000 and 3 GB: 54 min; chunks of 20,000 and the default cache
    had built 5.16M after 40 min and slowed as the indexes grew."""
    rng = random.Random(seed)
    base = short_texts() if short else load_alpaca()
    with Store(path) as store:
        if cache_mb and not is_db_url(path):
            store.conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
        ds = store.ensure_dataset("bench")
        with store.staged_samples() as staging:
            for start in range(0, n, chunk):
                staging.add(_sample(base, i) for i in range(start, min(n, start + chunk)))
            with store.transaction():
                staging.publish(ds.id)
        store.index_search_backlog()
        ids = store.sample_ids(ds.id)
        for start in range(0, n, chunk):
            _build_chunk(store, base, rng, ids, start, min(n, start + chunk))
        decided = sorted(rng.sample(range(n), n // 10))
        for start in range(0, len(decided), chunk):
            store.add_reviews(
                Review(sample_id=ids[i], decision=rng.choice(["accept", "reject"]),
                       annotator="bench")
                for i in decided[start : start + chunk]
            )  # fmt: skip


def _build_chunk(store: Store, base, rng, ids: list[int], start: int, end: int) -> None:
    """Two candidates, ~8 scores and a suggestion for samples start..end."""
    candidates = []
    for i in range(start, end):
        sample, sid = _sample(base, i), ids[i]
        candidates.append(
            Candidate(
                sample_id=sid,
                kind="instruction",
                instruction=f"In detail and step by step: {sample.instruction}",
                input=sample.input,
                output=f"{sample.output}\n\nIn short, the key points are covered above.",
                critique="The instruction is vague.",
                status="failed" if rng.random() < 0.01 else "ok",
            )
        )
        candidates.append(
            Candidate(
                sample_id=sid,
                kind="response",
                instruction=sample.instruction,
                input=sample.input,
                output=sample.output.replace(" the ", " this ", 2) + " Furthermore, it helps.",
                critique="The answer is thin.",
            )
        )
    store.add_candidates(candidates)
    scores, suggestions = [], []
    for k, i in enumerate(range(start, end)):
        sid, c1, c2 = ids[i], candidates[2 * k].id, candidates[2 * k + 1].id
        ifd = rng.uniform(0.3, 1.3)
        words = len(base[i % len(base)]["output"].split())
        scores += [
            Score(sample_id=sid, metric="ifd_ppl", value=ifd, scorer="smollm2"),
            Score(sample_id=sid, candidate_id=c1, metric="ifd_ppl", value=ifd * rng.uniform(0.6, 1.1), scorer="smollm2"),
            Score(sample_id=sid, candidate_id=c2, metric="ifd_ppl", value=ifd * rng.uniform(0.6, 1.1), scorer="smollm2"),
            Score(sample_id=sid, metric="judge", value=rng.randint(1, 10), scorer="judge"),
            Score(sample_id=sid, candidate_id=c1, metric="judge", value=rng.randint(1, 10), scorer="judge"),
            Score(sample_id=sid, candidate_id=c1, metric="drift", value=1 - rng.random() ** 3),
            Score(sample_id=sid, candidate_id=c2, metric="drift", value=1 - rng.random() ** 3),
            Score(sample_id=sid, metric="words_output", value=words),
        ]  # fmt: skip
        suggestions.append(
            Suggestion(sample_id=sid, candidate_id=c2, rule="ifd", reason="IFD drops",
                       confidence=rng.random())
        )  # fmt: skip
    store.put_scores(scores)
    store.put_suggestions(suggestions)


def db_target(text: str) -> Path | str:
    """A --db argument: a postgresql:// URL as it is (a Path would fold its //), else a file."""
    return text if is_db_url(text) else Path(text)


def has_bench(db: Path | str) -> bool:
    """Whether `db` already holds the bench dataset (a missing file does not)."""
    if not is_db_url(db) and not Path(db).exists():
        return False
    with Store(db) as store:
        return "bench" in {d.name for d in store.datasets()}


def timed_runs(at: AppTest, action, repeats: int) -> list[float]:
    """Milliseconds of each `action(at)` + `at.run()`."""
    times = []
    for _ in range(repeats):
        action(at)
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1000)
        if at.exception:
            raise SystemExit(f"page failed: {at.exception[0].message}")
    return times


def open_review(timeout: float = 120) -> tuple[AppTest, float]:
    at = AppTest.from_file(REVIEW, default_timeout=timeout)
    at.session_state["annotator"] = "bench"
    start = time.perf_counter()
    at.run()
    took = (time.perf_counter() - start) * 1000
    if at.exception:
        raise SystemExit(f"review page failed: {at.exception[0].message}")
    return at, took


def press(label: str):
    def action(at: AppTest) -> None:
        next(b for b in at.button if b.label.startswith(label)).click()

    return action


def _set_range(metric: str, low: float | None):
    def action(at: AppTest) -> None:
        at.selectbox(key="q_metric").select(metric)
        at.number_input(key="q_low").set_value(low)

    return action


# Each filter change the benchmarks time, with what sets it back: (change, reset).
FILTERS = {
    "filter_status": (
        lambda at: at.multiselect(key="q_status").set_value(["accepted"]),
        lambda at: at.multiselect(key="q_status").set_value(["undecided"]),
    ),
    "filter_flag": (
        lambda at: at.multiselect(key="q_flags").set_value(["drift"]),
        lambda at: at.multiselect(key="q_flags").set_value([]),
    ),
    "filter_range": (_set_range("ifd_ppl", 1.0), _set_range("(none)", None)),
    "filter_search": (
        lambda at: at.text_input(key="q_text").input("photosynthesis"),
        lambda at: at.text_input(key="q_text").input(""),
    ),
    # A word in 12 % of the rows: its set is large (PostgreSQL took 60 s before m024).
    "filter_search_common": (
        lambda at: at.text_input(key="q_text").input("explain"),
        lambda at: at.text_input(key="q_text").input(""),
    ),
    "filter_order": (
        lambda at: at.selectbox(key="q_sort").select("IFD change (largest drop first)"),
        lambda at: at.selectbox(key="q_sort").select("Source order"),
    ),
}


def review_figures(repeats: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}
    at, first = open_review()
    figures["review_open"] = [first]
    figures["next_sample"] = timed_runs(at, press("Next"), repeats)
    figures["decide_next"] = timed_runs(at, press("Accept candidate"), repeats)
    for name, (change, reset) in FILTERS.items():
        times = []
        for _ in range(max(5, repeats // 2)):
            times += timed_runs(at, change, 1)
            reset(at)
            at.run()
        figures[name] = times
    return figures


def query_figures(db: Path | str, repeats: int) -> dict[str, list[float]]:
    queries = {
        "query_status": QueueQuery(statuses=("accepted",)),
        "query_flag": QueueQuery(statuses=("undecided",), flags=("drift",)),
        "query_range": QueueQuery(ranges=(ScoreRange("ifd_ppl", 1.0, None),)),
        "query_change": QueueQuery(ranges=(ScoreRange("ifd_ppl", None, -0.2, "change"),)),
        "query_search": QueueQuery(text="photosynthesis"),
        "query_search_common": QueueQuery(text="explain"),
        "query_search_every": QueueQuery(text="the"),
        "query_order_ifd_change": QueueQuery(sort="change", sort_metric="ifd_ppl"),
        "query_order_confidence": QueueQuery(sort="confidence", descending=True),
    }
    figures = {}
    with Store(db) as store:
        ds = store.dataset("bench").id
        for name, query in queries.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                store.queue_ids(ds, query, limit=WINDOW)  # what a filter change loads
                times.append((time.perf_counter() - start) * 1000)
            figures[name] = times
    return figures


def page_figure(
    path: str, repeats: int, state: dict | None = None, cold: bool = False
) -> list[float]:
    """A fresh session's first run of a page; `cold`: with Streamlit's data cache emptied
    before each (what the first visitor after a change waits for).

    A fresh AppTest scans every installed package's metadata for components on its first
    run (~250 ms here, with ~600 packages), which a served app does once at start, not per
    session: the scan of the first AppTest is handed to the others, so the figure is the
    page's own (before this, Home's ~300 ms was mostly that scan)."""
    if "manager" not in _COMPONENTS:  # what AppTest's first run does, once, unmeasured
        from streamlit.components.v2.component_manager import BidiComponentManager

        _COMPONENTS["manager"] = BidiComponentManager()
        _COMPONENTS["manager"].discover_and_register_components(start_file_watching=False)
    times = []
    for _ in range(repeats):
        if cold:
            st.cache_data.clear()
        at = AppTest.from_file(path, default_timeout=120)
        at._bidi_component_manager = _COMPONENTS["manager"]  # private: see above
        for key, value in (state or {}).items():
            at.session_state[key] = value
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1000)
        if at.exception:
            raise SystemExit(f"{path} failed: {at.exception[0].message}")
    return times


_COMPONENTS: dict = {}  # one component registry for every AppTest of page_figure


def _check_bulk_preview() -> None:
    """The timed Bulk page must have counted: a page that stopped early would time nothing."""
    at = AppTest.from_file(str(BULK), default_timeout=120)
    at.session_state["annotator"] = "bench"
    at.run()
    if not any(m.label == "Samples this rule decides now" for m in at.metric):
        raise SystemExit("the Bulk page showed no preview: bulk_preview_cold timed nothing")


def empty_page_figure(tmp: Path, repeats: int) -> list[float]:
    """Reruns of a one-line page: what AppTest itself costs per run."""
    script = tmp / "empty_page.py"
    script.write_text("import streamlit as st\nst.button('Next')\n")
    at = AppTest.from_file(str(script), default_timeout=60)
    at.run()
    return timed_runs(at, press("Next"), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--db", type=db_target, help="reuse (or build once into) this file or postgresql:// URL"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    db = args.db or tmp / "bench.db"
    if not has_bench(db):
        start = time.perf_counter()
        build_store(db, args.samples)
        print(f"built {db} ({args.samples:,} samples) in {time.perf_counter() - start:.1f} s")
    with Store(db) as store:  # a reused store's own size, not --samples
        samples = next(d.sample_count for d in store.datasets() if d.name == "bench")
    small = tmp / "small.db"
    build_store(small, 64)

    rows: dict[str, list[float]] = {"empty_page": empty_page_figure(tmp, args.repeats)}
    os.environ["REFLECTION_DB"] = str(small)
    small_figures = review_figures(args.repeats)
    rows["next_sample_64"] = small_figures["next_sample"]
    os.environ["REFLECTION_DB"] = str(db)
    rows.update(review_figures(args.repeats))
    rows.update(query_figures(db, args.repeats))
    rows["home"] = page_figure(HOME, 3)
    if DASHBOARD.exists():
        rows["dashboard_cold"] = page_figure(str(DASHBOARD), 3, cold=True)
        rows["dashboard"] = page_figure(str(DASHBOARD), 3)
    if BULK.exists():  # its first rule, accept-suggested, previewed with no cached match
        rows["bulk_preview_cold"] = page_figure(str(BULK), 3, {"annotator": "bench"}, cold=True)
        _check_bulk_preview()

    empty = statistics.median(rows["empty_page"])
    print(f"\nReview app at {samples:,} samples (AppTest run wall time, ms; median)")
    print(f"{'operation':<26}{'median':>9}{'p90':>9}{'- empty':>9}{'target':>8}  ok")
    for name, times in rows.items():
        med = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        key = "filter" if name.startswith(("filter_", "query_")) else name
        target = TARGETS_MS.get(key)
        verdict = "" if target is None else ("yes" if med <= target else "NO")
        print(
            f"{name:<26}{med:>9.1f}{p90:>9.1f}{med - empty:>9.1f}"
            f"{(target if target is not None else ''):>8}  {verdict}"
        )
    ratio = statistics.median(rows["next_sample"]) / statistics.median(rows["next_sample_64"])
    print(f"\nnext sample at {samples:,} vs 64 samples: {ratio:.2f}x")


if __name__ == "__main__":
    main()
