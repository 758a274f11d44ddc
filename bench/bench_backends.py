"""The review app on PostgreSQL against SQLite, at 1,000,000 samples, in one run.

One store of N samples is built with bench_app's builder (two candidates and ~8 scores a
sample, a suggestion each, 10 % decided) into SQLite, then copied whole into PostgreSQL with
`copy_store` (what `reflection migrate` does; at 20,000 samples, in one run, copying took
43 s with INSERTs and building straight into PostgreSQL 63 s, so the copy is used; it loads
with COPY now and ANALYZEs the copy itself). Both run in a forked child, so this
process stays small; its peak memory is reported. Then, on both backends, interleaved
(one backend then the other, the order swapped each round) so that outside load falls on
both alike, median of repeats:

  - script runs under Streamlit's AppTest (bench_app's functions): Next on the Review page,
    each queue filter (status, flag, score range, search, order by IFD change), the
    Dashboard with its cache cleared (cold) and filled (warm), Home, the Bulk page's preview
    of its first rule with the cache cleared. Floor for Next: AppTest rerunning a one-button
    page;
  - key press -> next sample in Debian's Chromium: `streamlit run app.py` per backend, "n"
    pressed on a settled page (script idle, then 1 s), timed in the page from the keydown
    to the first animation frame that shows the next place in the queue. The floor: a
    one-button page of the same shape (the position line, Next on "n") served the same way.

Goal (issue 14): key press -> next sample <= 1.5 x the floor.

    python bench/bench_backends.py [--samples 1000000] [--repeats 9] [--presses 15]
        [--db PATH] [--pg URL|auto|none] [--json PATH]

--db and --pg reuse stores that already hold the dataset "bench" (else they are built: --db
keeps the SQLite store, which is otherwise deleted at the end); --pg auto (the default)
starts a throw-away PostgreSQL cluster on 127.0.0.1, stopped and deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import streamlit as st  # noqa: E402
from bench_app import (  # noqa: E402
    BULK,
    DASHBOARD,
    FILTERS,
    HOME,
    build_store,
    db_target,
    empty_page_figure,
    has_bench,
    open_review,
    page_figure,
    press,
    timed_runs,
)
from browser_support import chromium, streamlit_app  # noqa: E402
from pg_cluster import memory_of, throwaway_database  # noqa: E402

from reflection import Store  # noqa: E402
from reflection.store.copy import copy_store  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
LABELS = {"floor": "floor", "sqlite": "SQLite", "postgresql": "PostgreSQL"}
WAIT_MS = 120_000  # the first Review page at 1,000,000 samples takes seconds
SETTLE_MS = 1_000  # Streamlit drops a key pressed within ~0.5 s after a run ends
FLOOR_PAGE = """import streamlit as st

st.session_state.setdefault("k", 1)


def step():
    st.session_state.k += 1


nav = st.columns([1.3, 1, 1, 5], vertical_alignment="center")
nav[1].button("Next", shortcut="N", on_click=step)
nav[3].caption(f"Sample **{st.session_state.k}** · {st.session_state.k:,} of {TOTAL:,} in queue")
"""
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# The place in the queue the position line shows ("Sample <id> · <place> of"), or null.
PLACE = """() => {
  for (const el of document.querySelectorAll('[data-testid="stCaptionContainer"]')) {
    const m = /^\\s*Sample \\d+ · ([\\d,]+) of/.exec(el.textContent);
    if (m) return Number(m[1].replace(/,/g, ''));
  }
  return null;
}"""
ARM = """() => { window.__pressed = null; document.addEventListener('keydown',
  () => { window.__pressed = performance.now(); }, {capture: true, once: true}); }"""
SHOWN = f"""place => window.__pressed !== null && ({PLACE})() === place
  && performance.now() - window.__pressed"""


# --- the stores ---------------------------------------------------------------------------


def _in_child(function, *args) -> float:
    """Run function(*args) in a forked child (its memory goes with it); seconds taken."""
    start = time.perf_counter()
    child = multiprocessing.get_context("fork").Process(target=function, args=args)
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"{function.__name__}{args} failed (exit {child.exitcode})")
    return time.perf_counter() - start


def _copy(source: Path | str, url: str) -> None:
    with Store(source) as built, Store(url) as copy:
        unequal = [c.table for c in copy_store(built, copy) if not c.equal]
        if unequal:
            raise SystemExit(f"copy differs from its source in {unequal}")


def prepare(args: argparse.Namespace, sqlite: Path | str, url: str) -> tuple[dict, dict]:
    """The two stores ({backend: path or URL}), built where they lack the dataset "bench";
    what that took."""
    targets: dict[str, Path | str] = {"sqlite": sqlite}
    if "postgresql" in BACKENDS:
        targets["postgresql"] = url
    load: dict[str, float] = {}
    if not has_bench(targets["sqlite"]):
        load["sqlite_build_s"] = _in_child(build_store, targets["sqlite"], args.samples)
        print(f"built SQLite ({args.samples:,} samples) in {load['sqlite_build_s']:.1f} s")
    if "postgresql" in targets and not has_bench(targets["postgresql"]):
        seconds = _in_child(_copy, targets["sqlite"], targets["postgresql"])
        load["pg_copy_s"] = seconds
        print(f"copied into PostgreSQL (checked, analyzed) in {seconds:.1f} s")
    if load:
        load["build_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    counts = set()
    for target in targets.values():
        with Store(target) as store:
            counts.add(store.dataset("bench").sample_count)
    if len(counts) > 1:
        raise SystemExit(f"the two stores differ: {sorted(counts)} samples; reuse matching ones")
    load["samples"] = counts.pop()
    return targets, load


# --- script runs under AppTest -------------------------------------------------------------


def _interleaved(targets: dict, name: str, repeats: int, measure, rows: dict) -> None:
    """rows[backend][name] += measure(backend) ms, backends alternating, order swapped."""
    for round_ in range(repeats):
        for backend in BACKENDS if round_ % 2 == 0 else BACKENDS[::-1]:
            os.environ["REFLECTION_DB"] = str(targets[backend])  # what each run opens
            rows[backend][name].append(measure(backend))


def script_figures(targets: dict, repeats: int) -> dict:
    rows: dict = {backend: defaultdict(list) for backend in BACKENDS}
    tests = {}
    for backend in BACKENDS:  # the first runs import the pages' modules: not timed
        os.environ["REFLECTION_DB"] = str(targets[backend])
        tests[backend] = open_review()[0]
    _interleaved(targets, "review_open", repeats, lambda b: open_review()[1], rows)
    _interleaved(targets, "next_sample", repeats,
                 lambda b: timed_runs(tests[b], press("Next"), 1)[0], rows)  # fmt: skip
    for name, (change, reset) in FILTERS.items():

        def filtered(backend: str, change=change, reset=reset) -> float:
            took = timed_runs(tests[backend], change, 1)[0]
            reset(tests[backend])
            tests[backend].run()
            return took

        _interleaved(targets, name, repeats, filtered, rows)

    def cold(_backend: str) -> float:
        st.cache_data.clear()
        return page_figure(str(DASHBOARD), 1)[0]

    _interleaved(targets, "dashboard_cold", repeats, cold, rows)
    _interleaved(targets, "dashboard_warm", repeats,
                 lambda b: page_figure(str(DASHBOARD), 1)[0], rows)  # fmt: skip
    _interleaved(targets, "home", repeats, lambda b: page_figure(HOME, 1)[0], rows)

    def bulk_cold(_backend: str) -> float:  # its first rule counted and shown, no cache
        return page_figure(str(BULK), 1, {"annotator": "bench"}, cold=True)[0]

    _interleaved(targets, "bulk_preview_cold", repeats, bulk_cold, rows)
    return rows


# --- key press -> next sample in Chromium ------------------------------------------------


def _settle(page) -> None:
    page.bring_to_front()  # keys go to the focused tab, as for a person
    page.wait_for_function("document.hasFocus()", timeout=WAIT_MS)
    page.locator(IDLE).wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(SETTLE_MS)


def _open(browser, urls: dict[str, str]) -> dict:
    """A page per server, opened at once (each server's first run imports the app); on the
    Review pages the name is given. Returns them once each shows its position line."""
    pages = {}
    for name, url in urls.items():
        pages[name] = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        pages[name].goto(url if name == "floor" else f"{url}/Review", wait_until="commit")
    for name, page in pages.items():
        if name != "floor":
            page.get_by_label("Your name").fill("bench", timeout=WAIT_MS)
            page.keyboard.press("Enter")
    for page in pages.values():
        page.wait_for_function(PLACE, timeout=WAIT_MS)
    return pages


def _press_next(page) -> tuple[float, int]:
    """Milliseconds from the keydown of "n" to the frame showing the next place; and how
    many presses the page dropped (idle on the same place 5 s later: pressed again)."""
    dropped = 0
    while True:
        _settle(page)
        place = page.evaluate(PLACE)
        page.evaluate(ARM)
        page.keyboard.press("n")
        try:
            shown = page.wait_for_function(SHOWN, arg=place + 1, polling="raf", timeout=5_000)
            return shown.json_value(), dropped
        except Exception:  # playwright's TimeoutError: a slow run, or a dropped key
            if page.locator(IDLE).count() and page.evaluate(PLACE) == place:
                dropped += 1
                if dropped < 3:
                    continue
                raise
        shown = page.wait_for_function(SHOWN, arg=place + 1, polling="raf", timeout=WAIT_MS)
        return shown.json_value(), dropped


def browser_figures(targets: dict, tmp: Path, presses: int) -> tuple[dict, dict]:
    floor = tmp / "floor_page.py"
    with Store(targets["sqlite"]) as store:
        floor.write_text(f"TOTAL = {store.dataset('bench').sample_count}\n{FLOOR_PAGE}")
    rows: dict = {name: [] for name in ("floor", *BACKENDS)}
    dropped = dict.fromkeys(rows, 0)
    logs = {name: tmp / name for name in rows}
    for folder in logs.values():
        folder.mkdir(exist_ok=True)
    servers = {
        "floor": streamlit_app(targets["sqlite"], log_dir=logs["floor"], script=floor),
        **{b: streamlit_app(targets[b], log_dir=logs[b], timeout=WAIT_MS) for b in BACKENDS},
    }
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(3) as pool:
        urls = dict(zip(servers, pool.map(stack.enter_context, servers.values()), strict=True))
        browser = stack.enter_context(chromium())
        pages = _open(browser, urls)
        order = list(pages)
        for n in range(presses):
            for name in order[n % len(order) :] + order[: n % len(order)]:
                took, lost = _press_next(pages[name])
                rows[name].append(took)
                dropped[name] += lost
    return rows, dropped


# --- the report -------------------------------------------------------------------------------


def _p90(times: list[float]) -> float:
    """The nearest-rank 90th percentile: the largest of fewer than ten."""
    return sorted(times)[math.ceil(0.9 * len(times)) - 1]


def table(scripts: dict, empty: list[float], keys: dict) -> list[str]:
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    both = len(BACKENDS) == 2
    header = ["step (ms)", "floor", *(names[b] for b in BACKENDS)]
    header += ["PG / SQLite"] if both else []
    header += [f"{names[b]} / floor" for b in BACKENDS]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def row(name: str, floor: float | None, values: list[float]) -> None:
        cells = [f"{floor:.1f}" if floor else "", *(f"{v:.1f}" for v in values)]
        cells += [f"{values[1] / values[0]:.2f}"] if both else []
        cells += [f"{v / floor:.2f}" if floor else "" for v in values]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    for name in scripts["sqlite"]:
        floor = statistics.median(empty) if name == "next_sample" else None
        row(f"{name} (AppTest)", floor, [statistics.median(scripts[b][name]) for b in BACKENDS])
    if keys:
        for label, stat in (("median", statistics.median), ("p90", _p90)):
            row(f"key press -> next sample, {label} (Chromium)", stat(keys["floor"]),
                [stat(keys[b]) for b in BACKENDS])  # fmt: skip
    return lines


def main() -> None:
    for name in ("scriptrunner_utils.script_run_context", "caching.cache_data_api"):
        logging.getLogger(f"streamlit.runtime.{name}").disabled = True  # notes on bare mode
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=9, help="AppTest runs per step")
    parser.add_argument("--presses", type=int, default=15, help="key presses per page")
    parser.add_argument("--db", type=db_target, help="SQLite file to reuse (or build into)")
    parser.add_argument(
        "--pg", default="auto", help="postgresql:// URL to reuse, auto, or none (SQLite alone)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    if args.pg == "none":  # SQLite alone: its figures against the floor, no PostgreSQL
        global BACKENDS
        BACKENDS = ("sqlite",)
    database = throwaway_database("bench") if args.pg == "auto" else contextlib.nullcontext(args.pg)
    with tempfile.TemporaryDirectory(prefix="bench_backends_") as folder, database as url:
        tmp = Path(folder)
        started = time.perf_counter()
        targets, load = prepare(args, args.db or tmp / "bench.db", url)
        print(f"stores ready in {time.perf_counter() - started:.1f} s", flush=True)
        if url:
            print(f"PostgreSQL: {memory_of(url)}", flush=True)
        started = time.perf_counter()
        empty = empty_page_figure(tmp, args.repeats)
        scripts = script_figures(targets, args.repeats)
        print(f"AppTest steps in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        keys, dropped = browser_figures(targets, tmp, args.presses) if args.presses else ({}, {})
        print(f"key presses in {time.perf_counter() - started:.1f} s", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nSQLite and PostgreSQL at {load['samples']:,} samples: median of {args.repeats}"
          f" AppTest runs, {args.presses} key presses per page; load average"
          f" {load_before:.1f} -> {os.getloadavg()[0]:.1f}; peak RSS {rss:.0f} MB here\n")  # fmt: skip
    print("\n".join(table(scripts, empty, keys)))
    if keys:
        print(f"\nkey presses dropped and pressed again: {dropped}")
    if args.json:
        figures = {"load": load, "peak_rss_mb": rss, "apptest_empty_page": empty,
                   "apptest": scripts, "keypress": keys, "dropped": dropped if keys else {}}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
