"""Crash safety, secrets, the Batch API mode and the CLI, with real processes and files."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.export.curated import export_dataset
from reflection.records import Review, Sample
from reflection.reflect.oracle import Oracle
from reflection.reflect.pipeline import reflect_dataset
from reflection.reflect.settings import OracleConfig
from reflection.store import Store

ROOT = Path(__file__).resolve().parent.parent
SENTINEL = "sk-SENTINEL-7f3a9c1e-never-store-me"


def _fill(path: Path, records, count: int) -> None:
    """`count` samples of the real pairs; past the last, they repeat with a numbered suffix."""
    samples = []
    for i in range(count):
        r = records[i % len(records)]
        suffix = f" ({i // len(records)})" if i >= len(records) else ""
        samples.append(Sample(instruction=r["instruction"] + suffix, input=r["input"],
                              output=r["output"], position=i))  # fmt: skip
    with Store(path) as store:
        store.add_samples(store.ensure_dataset("alpaca").id, samples)


def _cli(db: Path, server, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reflection", "reflect", "--db", str(db), "--mode", "response",
            "--base-url", server.base_url, "--model", "gpt-4o-mini", "--yes", *extra]  # fmt: skip


def _committed(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT sample_id, raw FROM candidates").fetchall()


@pytest.mark.slow
def test_sigkill_mid_run_loses_nothing_and_resends_nothing_stored(
    tmp_path, alpaca_records, fake_oracle
):
    db = tmp_path / "kill.db"
    total = 800
    _fill(db, alpaca_records, total)
    # ~7.5 s of work, killed after ~2 s.
    fake_oracle.configure(latency=0.3)
    concurrency = 32
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL}
    process = subprocess.Popen(
        _cli(db, fake_oracle, "--concurrency", str(concurrency)),
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # The oracle itself kills the run 5 ms after its 200th reply: the client has read the
    # latest replies and not yet done anything else with them, the moment a buffered
    # writer loses them.
    fake_oracle.configure(kill_pid=process.pid, kill_after=200)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill could land"
    first = fake_oracle.stats()
    stored = _committed(db)
    assert 0 < len(stored) < total, "the kill must land mid-run"
    stored_refs = {re.search(r"ref:(\w+)", raw)[1] for _, raw in stored}

    fake_oracle.configure(kill_pid=0)
    fake_oracle.reset()
    subprocess.run(_cli(db, fake_oracle, "--concurrency", str(concurrency)), cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    second = fake_oracle.stats()

    rows = _committed(db)
    per_sample = {}
    for sample_id, _ in rows:
        per_sample[sample_id] = per_sample.get(sample_id, 0) + 1
    assert len(per_sample) == total, "no sample lost"
    assert set(per_sample.values()) == {1}, "none duplicated"
    assert not stored_refs & set(second["by_ref"]), "nothing stored is asked for again"
    # Asked for again: only requests in flight at the kill (the server may have answered
    # them, the client never read the reply). A reply that was read is committed before
    # anything else happens, so none of those is paid for twice.
    resent = set(first["ok_by_ref"]) & set(second["by_ref"])
    assert len(resent) <= concurrency
    assert second["requests"] == total - len(stored)


def test_a_reply_is_committed_before_the_next_one_is_read(
    tmp_path, alpaca_records, fake_oracle, monkeypatch
):
    """Whatever moment a kill lands at, every reply read before it is in the database."""
    db = tmp_path / "each.db"
    _fill(db, alpaca_records, 60)
    fake_oracle.configure(latency=0.02)
    read: list[int] = []  # replies read so far, counted when the next one arrives
    behind: list[tuple[int, int]] = []
    original = Oracle.attempt

    async def attempt(self, *args, **kwargs):
        result = await original(self, *args, **kwargs)
        with sqlite3.connect(db) as conn:  # another connection sees only what is committed
            committed = conn.execute("SELECT count(*) FROM candidates").fetchone()[0]
        if committed < len(read):
            behind.append((len(read), committed))
        read.append(1)
        return result

    monkeypatch.setattr(Oracle, "attempt", attempt)
    config = OracleConfig(model="gpt-4o-mini", base_url=fake_oracle.base_url, api_key="k",
                          concurrency=8)  # fmt: skip
    with Store(db) as store:
        summary = reflect_dataset(store, "alpaca", mode="response", oracle=config)
    assert summary.counters["stored"] == len(read) == 60
    assert behind == []


@pytest.mark.slow
def test_ctrl_c_keeps_what_finished_and_marks_the_run_stopped(
    tmp_path, alpaca_records, fake_oracle
):
    db = tmp_path / "interrupt.db"
    _fill(db, alpaca_records, 200)
    # ~7.5 s of work: at 0.1 s a busy machine once let the run finish before Ctrl-C landed.
    fake_oracle.configure(latency=0.3)
    # Ctrl-C as a terminal delivers it: whatever the test runner was started with (a shell's
    # background job ignores SIGINT, and its children inherit that), the CLI gets the default.
    process = subprocess.Popen(
        _cli(db, fake_oracle, "--concurrency", "8"), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_committed(db)) < 30:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before Ctrl-C could land"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    assert b"Traceback" not in stderr and b"never retrieved" not in stderr, stderr.decode()
    assert b"stopping: " in stderr and b"(Ctrl-C again quits now)" in stderr  # it said so
    first = fake_oracle.stats()
    with Store(db) as store:
        run = store.runs(kind="reflect")[-1]
        assert (run.status, run.error) == ("stopped", "interrupted")
        kept = store.count_candidates()
        assert 30 <= kept < 200 and run.counters["stored"] == kept
    # Every request the oracle answered before the run ended was waited for and kept:
    # nothing paid for is lost, so the resumed run asks for none of it again.
    stored_refs = {re.search(r"ref:(\w+)", raw)[1] for _, raw in _committed(db)}
    assert set(first["ok_by_ref"]) == stored_refs
    fake_oracle.reset()
    subprocess.run(_cli(db, fake_oracle, "--concurrency", "8"), cwd=ROOT, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    assert len(_committed(db)) == 200
    assert not stored_refs & set(fake_oracle.stats()["by_ref"])
    assert fake_oracle.stats()["requests"] == 200 - kept


def test_the_api_key_is_never_written(tmp_path, alpaca_records, fake_oracle):
    db = tmp_path / "secret.db"
    _fill(db, alpaca_records, 8)
    log = tmp_path / "run.log"
    fake_oracle.configure(p500=0.3, p_garbage=0.3)  # errors and parse failures get written too
    env = {**os.environ, "OPENAI_LOG": "debug", "REFLECTION_DB": str(db)}
    with open(log, "wb") as out:
        subprocess.run(_cli(db, fake_oracle, "--api-key", SENTINEL, "--max-attempts", "2"),
                       cwd=ROOT, env=env, stdout=out, stderr=out, check=True, timeout=120)  # fmt: skip
        fake_oracle.configure(p500=0.0, status=401)  # a refused key: the error is stored
        with Store(db) as store:
            store.ensure_dataset("other")
            store.add_samples(2, [Sample(instruction="New one", output="x")])
        failed = subprocess.run(_cli(db, fake_oracle, "--api-key", SENTINEL, "--dataset", "other"),
                                cwd=ROOT, env=env, stdout=out, stderr=out, timeout=120)  # fmt: skip
    assert failed.returncode == 1
    with Store(db) as store:
        for sample_id in store.sample_ids(1):  # accept the reflections: provenance names them
            chosen = next((c.id for c in store.candidates_for(sample_id) if c.status == "ok"), None)
            store.add_review(Review(sample_id=sample_id, decision="accept", candidate_id=chosen))
        export = tmp_path / "export.jsonl"
        export_dataset(store, "alpaca", export, provenance=True)
        runs = store.runs(kind="reflect")
        assert runs[-1].status == "failed" and "401" in runs[-1].error
    assert "HTTP Request" in log.read_text() or log.stat().st_size > 0
    assert '"version": "response"' in export.read_text()  # reflections exported, key not
    files = [db, Path(f"{db}-wal"), log, export]
    for path in files:
        if path.exists():
            assert SENTINEL.encode() not in path.read_bytes(), path


def test_batch_mode_submits_polls_ingests_and_resumes(tmp_path, alpaca_records, fake_oracle):
    db = tmp_path / "batch.db"
    _fill(db, alpaca_records, 6)
    fake_oracle.configure(batch_delay=0.3)
    config = OracleConfig(model="gpt-4o-mini", base_url=fake_oracle.base_url, api_key="k")
    stop = threading.Event()
    stop.set()  # stop at the first poll: the batch stays submitted
    with Store(db) as store:
        first = reflect_dataset(store, "alpaca", mode="both", oracle=config, batch=True,
                                stop_event=stop, poll_interval=0.1)  # fmt: skip
        assert first.status == "submitted"
        run = store.get_run(first.run_id)
        assert run.status == "running" and run.settings["batch_state"]["batch_id"] == "batch-1"
        assert store.count_candidates() == 0
        second = reflect_dataset(store, "alpaca", mode="both", oracle=config, batch=True,
                                 poll_interval=0.1)  # fmt: skip
        assert second.run_id == first.run_id and second.status == "done"
        stats = fake_oracle.stats()
        assert stats["batches"] == 2  # one per chain step, none submitted twice
        assert stats["batch_lines"] == 12 and stats["requests"] == 0
        candidates = [c for cs in store.candidates_for_samples(store.sample_ids(1)).values()
                      for c in cs]  # fmt: skip
        assert sorted(c.kind for c in candidates) == ["both"] * 6 + ["instruction"] * 6
        assert (second.counters["total"], second.counters["stored"]) == (12, 12)
        assert all(c.status == "ok" and c.cost > 0 for c in candidates)
        parents = {c.id for c in candidates if c.kind == "instruction"}
        assert {c.parent_id for c in candidates if c.kind == "both"} == parents
        assert "batch_state" not in store.get_run(first.run_id).settings
        third = reflect_dataset(store, "alpaca", mode="both", oracle=config, batch=True)
        assert third.status == "done" and fake_oracle.stats()["batches"] == 2


def test_batch_items_that_fail_are_stored_as_errors(tmp_path, alpaca_records, fake_oracle):
    db = tmp_path / "batch.db"
    _fill(db, alpaca_records, 10)
    fake_oracle.configure(batch_delay=0.05, p500=0.5)
    config = OracleConfig(model="gpt-4o-mini", base_url=fake_oracle.base_url, api_key="k")
    with Store(db) as store:
        summary = reflect_dataset(store, "alpaca", mode="response", oracle=config, batch=True,
                                  poll_interval=0.05)  # fmt: skip
        assert summary.counters["ok"] + summary.counters["error"] == 10
        assert summary.counters["error"] > 0
        errors = [c for cs in store.candidates_for_samples(store.sample_ids(1)).values()
                  for c in cs if c.status == "error"]  # fmt: skip
        assert errors[0].error.startswith("batch item failed")


def test_cli_reflect_prints_estimate_progress_and_summary(tmp_path, alpaca_records, fake_oracle):
    db = tmp_path / "cli.db"
    _fill(db, alpaca_records, 5)
    runner = CliRunner()
    args = ["reflect", "--db", str(db), "--mode", "both", "--base-url", fake_oracle.base_url,
            "--model", "gpt-4o-mini", "--api-key", "k"]  # fmt: skip
    result = runner.invoke(main, [*args, "--estimate"])
    assert result.exit_code == 0, result.output
    assert "Estimate: 10 requests" in result.output
    assert fake_oracle.stats()["requests"] == 0
    result = runner.invoke(main, [*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert re.search(r"run 1 done: 10 stored \(10 ok, .*\$0\.\d{4}", result.output)
    result = runner.invoke(main, [*args, "--yes"])
    assert "10 already done" in result.output


def test_cli_reflects_only_the_undecided_or_the_given_samples(
    tmp_path, alpaca_records, fake_oracle
):
    """`--undecided` sends nothing for a decided sample; `--ids` only the ids given, in
    source order; the estimate counts the same samples as the run."""
    db = tmp_path / "cli.db"
    _fill(db, alpaca_records, 6)
    with Store(db) as store:
        ids = store.sample_ids(1)
        store.add_review(Review(sample_id=ids[1], decision="accept"))
        store.add_review(Review(sample_id=ids[4], decision="reject"))
    runner = CliRunner()
    args = ["reflect", "--db", str(db), "--mode", "response", "--base-url", fake_oracle.base_url,
            "--model", "gpt-4o-mini", "--api-key", "k", "--yes"]  # fmt: skip

    def reflected() -> list[int]:
        return [sample_id for sample_id, _ in _committed(db)]

    result = runner.invoke(main, [*args, "--undecided", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "Estimate: 3 requests" in result.output
    assert reflected() == [ids[0], ids[2], ids[3]]
    result = runner.invoke(main, [*args, "--ids", f"{ids[5]}, {ids[1]}"])
    assert result.exit_code == 0, result.output
    assert "Estimate: 2 requests" in result.output
    assert sorted(reflected()) == sorted([ids[0], ids[2], ids[3], ids[1], ids[5]])
    result = runner.invoke(main, [*args, "--undecided", "--ids", "1"])
    assert result.exit_code == 1 and "--undecided or --ids, not both" in result.output
    result = runner.invoke(main, [*args, "--ids", str(max(ids) + 1)])
    assert result.exit_code == 1
    assert f"sample {max(ids) + 1} is not in this dataset" in result.output
    assert len(reflected()) == 5


def test_cli_reports_a_broken_template_file(tmp_path, alpaca_records, fake_oracle):
    db = tmp_path / "cli.db"
    _fill(db, alpaca_records, 2)
    bad = tmp_path / "bad.toml"
    bad.write_text('[response]\nuser = "{instruction} {input}"\n')
    result = CliRunner().invoke(
        main, ["reflect", "--db", str(db), "--mode", "response", "--templates", str(bad),
               "--base-url", fake_oracle.base_url],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"Error: {bad}: [response] user message lacks {{output}}" in result.output


def test_cli_help_has_examples():
    for command in (["reflect"], ["oracle", "serve"]):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output
