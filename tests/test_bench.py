"""The benchmarks run: each at a small size, in its own process, as the README calls it.

Speed is not asserted here (figures live in the README, measured as ratios); what is tested
is that every benchmark still runs to its report, so the README's figures can be re-measured.
All but bench_student_load.py, whose three fresh-process loads of the student (80-110 s here)
repeat what test_student_cache.py proves (the cache is written, read, and identical).
The IFD benchmark also checks its own equality: our losses against the seed loop's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, timeout: int = 300) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _data_line(out: str) -> str:
    """The file a benchmark read: the whole Alpaca file beside the clone, else the subset."""
    found = re.search(r"^data: (\S+) \([\d,]+ Alpaca pairs\)$", out, re.M)
    assert found, out[:1000]
    assert Path(found[1]).name in ("alpaca_cherry_3k.json", "alpaca_subset.json")
    return found[1]


@pytest.fixture
def smollm2():
    """The SmolLM2 GGUF the student benchmarks load (skip without torch, gguf or the file)."""
    pytest.importorskip("torch")
    pytest.importorskip("gguf")
    from reflection.errors import ConfigError
    from reflection.scoring.student import smollm2_path

    try:
        return smollm2_path()
    except ConfigError as exc:
        pytest.skip(str(exc))


def test_bench_io():
    out = _run("bench/bench_io.py", "--records", "500", "--formats", "jsonl,csv")
    for step in ("| import            | baseline |      500", "| import            | csv      |",
                 "| export            | jsonl    |      500", "| import-candidates | jsonl"):  # fmt: skip
        assert step in out, out
    _data_line(out)


def test_bench_io_on_postgresql():
    """The same steps on a throw-away PostgreSQL cluster, each against its own baseline."""
    from pg_cluster import pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    out = _run("bench/bench_io.py", "--records", "500", "--formats", "jsonl", "--pg", "auto")
    for step in ("| import            | pg base  |      500", "| import            | pg jsonl |",
                 "| export            | pg jsonl |      500", "| import-candidates | pg jsonl |"):  # fmt: skip
        assert step in out, out
    assert "500 candidates added" in out.split("pg jsonl |")[-1], out


def test_bench_team_load():
    """Reviewers over the websocket on one app process, then on three, over PostgreSQL."""
    from pg_cluster import pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    out = _run("bench/bench_team_load.py", "--reviewers", "4", "--presses", "3", "--samples",
               "40", "--servers", "1,3")  # fmt: skip
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["servers"], r["decisions"], r["client"]) for r in runs] == [
        (1, 12, "protocol"), (3, 12, "protocol")]  # fmt: skip
    assert re.search(r"throughput with 3 app processes: [\d.]+ x that with 1", out), out
    _data_line(out)


def test_bench_diff():
    out = _run("bench/bench_diff.py", "--pairs", "2", "--alpaca-pairs", "10", "--repeats", "1", "--size", "1000")  # fmt: skip
    assert "demo_reflected" in out and "alpaca_other" in out


def test_bench_assign():
    out = _run("bench/bench_assign.py", "--samples", "2000")
    assert "ok: 6,000 rows, 0 samples without 3 distinct reviewers" in out
    assert "assign / (read_ids + deal + write)" in out


@pytest.mark.slow
def test_bench_reflect():
    out = _run(
        "bench/bench_reflect.py", "--samples", "60", "--concurrency", "8", "--latency", "0.01",
        "--seed-samples", "10", "--seed-fault-samples", "5", "--seed-fault-cap", "5",
    )  # fmt: skip
    assert "60/60 terminal, 0 duplicated" in out
    _data_line(out)


@pytest.mark.slow
def test_bench_memory(tmp_path):
    out = _run("bench/bench_memory.py", "--db", str(tmp_path / "m.db"), "--samples", "300",
               "--reflect", "20", "--score", "50", "--work", str(tmp_path))  # fmt: skip
    rows = re.findall(
        r"^\| (.+?) \| [\d.]+ s \| (\d+) MB \| [\d.]+ \| (yes|\*\*no\*\*) \|$", out, re.M
    )
    assert len(rows) == 15, out[-2000:]
    assert rows[0][0].startswith("baseline")
    assert {name.split()[0] for name, _, _ in rows[1:]} >= {
        "stats", "score", "suggest", "bulk", "spotcheck", "assign", "progress", "reflect", "export"
    }  # fmt: skip


def test_bench_app_and_dashboard():
    app = _run("bench/bench_app.py", "--samples", "300", "--repeats", "1")
    assert "next sample at 300 vs 64 samples" in app
    # The Bulk page's first run with its preview (bench_app checks the count was shown).
    assert re.search(r"^bulk_preview_cold +\d", app, re.M)
    dashboard = _run("bench/bench_dashboard.py", "--samples", "300", "--repeats", "1")
    assert "page_cold" in dashboard
    assert _data_line(app) == _data_line(dashboard)


@pytest.mark.slow
@pytest.mark.browser
def test_bench_backends(tmp_path):
    from browser_support import CHROMIUM
    from pg_cluster import pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    pytest.importorskip("psycopg")
    pytest.importorskip("playwright.sync_api")
    report = tmp_path / "backends.json"
    out = _run("bench/bench_backends.py", "--samples", "300", "--repeats", "1", "--presses", "2",
               "--pg", "auto", "--json", str(report))  # fmt: skip
    _data_line(out)
    for row in ("| next_sample (AppTest) | ", "| filter_search (AppTest) |",
                "| dashboard_cold (AppTest) |", "| bulk_preview_cold (AppTest) |",
                "| key press -> next sample, median (Chromium) | "):  # fmt: skip
        assert row in out, out
    figures = json.loads(report.read_text())
    assert figures["load"]["samples"] == 300
    assert {name: len(times) for name, times in figures["keypress"].items()} == {
        "floor": 2, "sqlite": 2, "postgresql": 2
    }  # fmt: skip
    assert set(figures["apptest"]["postgresql"]) == set(figures["apptest"]["sqlite"])


@pytest.mark.slow
@pytest.mark.student
def test_bench_ifd(tmp_path, smollm2):
    report = tmp_path / "ifd.json"
    out = _run("bench/bench_ifd.py", "--n", "2", "--rounds", "1", "--json", str(report))
    _data_line(out)
    figures = json.loads(report.read_text())
    assert figures["records"] == 2 and figures["tokens"] > 0
    assert figures["max_rel_diff"] < 1e-3
    assert figures["linear_kernel"] in ("default", "onednn")
