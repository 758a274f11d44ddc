"""Background jobs claimed through the database: claims, heartbeats, stops from another server,
takeovers, and a server killed with SIGKILL mid-job. Real stores on both backends, real
threads and processes, the fake oracle over real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from appdata import build
from browser_support import free_port
from streamlit.testing.v1 import AppTest

from reflection.diff import escape_markdown
from reflection.jobs import (
    KEY_FROM_ENV,
    KEY_NONE,
    KEY_TYPED,
    JobSpec,
    JobState,
    Selection,
    Supervisor,
    job_state,
    key_source,
    request_stop,
    start_job,
    supervise_once,
    take_over,
    wait_job,
    where,
)
from reflection.jobs import supervisor as supervisor_module
from reflection.records import Sample
from reflection.reflect.settings import OracleConfig
from reflection.scoring.settings import ScoringSettings
from reflection.store import Store

pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "job_child.py"
SECRET = "sk-test-NEVER-STORED-9131"


def samples(store: Store, n: int) -> tuple[int, list[int]]:
    data = store.ensure_dataset("jobs")
    store.add_samples(
        data.id,
        [Sample(instruction=f"Explain topic number {i} to a child.", output=f"Topic {i}.")
         for i in range(n)],
    )  # fmt: skip
    return data.id, store.sample_ids(data.id)


def unstarted(store: Store, dataset_id: int, n: int) -> list[int]:
    """Jobs recorded with no owner yet: claimable at once."""
    return [
        store.start_background_job(
            dataset_id, {"task": "reflect"}, {"task": "reflect"}, key_source=KEY_NONE, owner=""
        )
        for _ in range(n)
    ]


def wait_until(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def oracle_for(server, concurrency: int = 1) -> OracleConfig:
    return OracleConfig(model="fake-oracle", base_url=server.base_url, concurrency=concurrency)


def refs(store: Store, ids: list[int]) -> dict[int, str]:
    """Each sample's stored candidate, by the request hash its reply names."""
    found = {}
    for sample_id, candidates in store.candidates_for_samples(ids).items():
        for candidate in candidates:
            found[sample_id] = re.search(r"ref:([0-9a-f]{16})", candidate.raw).group(1)
    return found


# --- claims ----------------------------------------------------------------------------------


def test_two_servers_claiming_at_once_never_take_the_same_job(store, store_target):
    data = store.ensure_dataset("d")
    ids = unstarted(store, data.id, 12)
    won: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def claim(name: str) -> None:
        with Store(store_target) as mine:  # a connection of its own, as another server has
            barrier.wait()
            for _ in range(len(ids) + 1):  # bounded: a broken claim would never say none
                job = mine.claim_background_job(f"server-{name}", 60.0)
                if job is None:
                    break
                won[name].append(job.run_id)

    threads = [threading.Thread(target=claim, args=(name,)) for name in won]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won["a"] + won["b"]) == ids
    rows = store.background_jobs(ids)
    for name, claimed in won.items():
        for run_id in claimed:
            assert rows[run_id].owner == f"server-{name}"
            assert [t["by"] for t in rows[run_id].takeovers] == [f"server-{name}"]


def test_one_job_claimed_by_two_servers_at_once_has_one_winner(store, store_target):
    data = store.ensure_dataset("d")

    def claim(name: str, run_id: int, barrier: threading.Barrier, results: dict) -> None:
        with Store(store_target) as mine:
            barrier.wait()
            results[name] = mine.claim_background_job(name, 60.0, run_id=run_id)

    for _ in range(8):
        [run_id] = unstarted(store, data.id, 1)
        results: dict[str, object] = {}
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=claim, args=(name, run_id, barrier, results))
            for name in ("a", "b")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [name for name, claimed in results.items() if claimed is not None]
        assert len(winners) == 1
        assert store.background_job(run_id).owner == winners[0]


def test_a_job_is_claimable_only_once_its_owner_goes_silent(store):
    data = store.ensure_dataset("d")
    run_id = store.start_background_job(data.id, {"task": "reflect"}, {"task": "reflect"},
                                        key_source=KEY_NONE, owner="server-a")  # fmt: skip
    assert store.claim_background_job("server-b", 60.0) is None
    assert store.beat_background_job(run_id, "server-a", {"done": 1, "total": 3}) == ""
    assert not job_state(store, run_id).stalled
    time.sleep(0.3)
    assert job_state(store, run_id, stale_after=0.2).stalled
    claim = store.claim_background_job("server-b", 0.2)
    assert claim is not None and (claim.run_id, claim.owner) == (run_id, "server-a")
    # server-a was only slow: back, it finds the job taken and writes nothing more
    assert store.beat_background_job(run_id, "server-a", {"done": 99}) is None
    assert not store.finish_background_job(run_id, "server-a", "failed", error="late")
    state = job_state(store, run_id)
    assert (state.status, state.done, state.owner) == ("running", 1, "server-b")
    assert state.taken_over and state.takeovers[0]["from"] == "server-a"
    assert store.finish_background_job(run_id, "server-b", "done")
    time.sleep(0.3)
    assert store.claim_background_job("server-c", 0.2) is None  # a finished job stays finished


# --- stop and takeover with real jobs ---------------------------------------------------------


def test_a_stop_asked_on_another_server_reaches_the_owner(store, store_target, fake_oracle):
    dataset_id, _ = samples(store, 12)
    fake_oracle.configure(latency=0.3)
    spec = JobSpec("reflect", dataset_id, oracle=oracle_for(fake_oracle))
    run_id = start_job(store_target, spec, owner="server-a", beat_every=0.1)
    wait_until(lambda: job_state(store, run_id).done >= 1, "the job to get going")
    with Store(store_target) as other:  # server-b's connection; no thread of server-a's here
        assert request_stop(other, run_id, "bob")
    assert wait_job(store_target, run_id, timeout=30)
    state = job_state(store, run_id)
    assert (state.status, state.stop_requested, state.owner) == ("stopped", "bob", "server-a")
    assert 1 <= state.done < 12
    assert not request_stop(store, run_id, "bob")


def test_a_server_presumed_dead_stops_when_it_finds_its_job_taken(store, store_target, fake_oracle):
    dataset_id, ids = samples(store, 8)
    fake_oracle.configure(latency=0.2)
    spec = JobSpec("reflect", dataset_id, oracle=oracle_for(fake_oracle))
    run_id = start_job(store_target, spec, owner="server-a", beat_every=0.1)
    wait_until(lambda: job_state(store, run_id).done >= 2, "the job to get going")
    claim = store.claim_background_job("server-b", -1.0, run_id=run_id)  # as if a went silent
    assert claim is not None and claim.owner == "server-a"
    assert wait_job(store_target, run_id, timeout=30)  # server-a's thread gives up
    assert job_state(store, run_id).status == "running"  # and leaves the job to server-b
    assert take_over(store, claim, "server-b", beat_every=0.1).outcome == "resumed"
    assert wait_job(store_target, run_id, timeout=30)
    state = job_state(store, run_id)
    assert (state.status, state.done, state.total, state.owner) == ("done", 8, 8, "server-b")
    found = store.candidates_for_samples(ids)
    assert all([c.kind for c in found[i]] == ["instruction"] for i in ids)


def test_a_job_of_a_killed_server_is_taken_over_and_finishes(store, store_target, fake_oracle):
    dataset_id, ids = samples(store, 12)
    fake_oracle.configure(latency=0.25)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), store_target, str(dataset_id), fake_oracle.base_url],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        run_id = int(child.stdout.readline())
        wait_until(lambda: job_state(store, run_id).done >= 4, "the child's job to get going")
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    before = refs(store, ids)
    assert 4 <= len(before) < len(ids)  # killed mid-way
    dead = job_state(store, run_id)
    assert dead.status == "running" and dead.owner.split(":")[1] == str(child.pid)

    supervisor = Supervisor(store_target, owner="server-b", poll_every=0.2, stale_after=1.0,
                            beat_every=0.2).start()  # fmt: skip
    try:
        wait_until(lambda: not job_state(store, run_id).active, "the job to be taken over")
    finally:
        supervisor.close()
    assert wait_job(store_target, run_id, timeout=30)
    state = job_state(store, run_id)
    assert state.status == "done", state.error
    assert (state.done, state.total) == (12, 12)
    assert [(t["by"], t["from"]) for t in state.takeovers] == [("server-b", dead.owner)]
    assert [(t.run_id, t.outcome) for t in supervisor.taken] == [(run_id, "resumed")]
    found = store.candidates_for_samples(ids)
    assert all([c.kind for c in found[i]] == ["instruction"] for i in ids)  # one each
    asked = fake_oracle.stats()["by_ref"]
    assert all(asked[ref] == 1 for ref in before.values())  # stored ones never asked again
    assert sum(asked.values()) <= len(ids) + 2  # at most the 2 in flight at the kill, twice
    assert store.get_run(dead.inner_run_id).status == "interrupted"  # the child's own run


def test_a_served_app_takes_over_a_job_before_any_browser_connects(
    store, store_target, fake_oracle
):
    """`reflection app` watches for dead servers' jobs from its start: Streamlit runs the
    app's script only once a browser connects, so nothing here ever connects."""
    dataset_id, ids = samples(store, 3)
    spec = JobSpec("reflect", dataset_id, oracle=oracle_for(fake_oracle))
    run_id = store.start_background_job(dataset_id, spec.settings(), spec.record(),
                                        key_source=KEY_NONE, owner="")  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "reflection", "app", "--db", store_target, "--headless",
         "--port", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        wait_until(lambda: job_state(store, run_id).status == "done", "the job's end", 90)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    state = job_state(store, run_id)
    assert (state.done, state.total) == (3, 3)
    assert state.owner.split(":")[1] == str(process.pid)  # the launcher, not its Streamlit
    assert all(len(found) == 1 for found in store.candidates_for_samples(ids).values())


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "env_key", "outcome"),
    [
        (KEY_TYPED, None, "interrupted"),
        (KEY_FROM_ENV, None, "interrupted"),
        (KEY_TYPED, "sk-env-1", "done"),
        (KEY_FROM_ENV, "sk-env-1", "done"),
        (KEY_NONE, None, "done"),
    ],
)
def test_a_job_is_resumed_only_with_a_key_this_server_has(
    tmp_path, fake_oracle, monkeypatch, source, env_key, outcome
):
    if env_key:
        monkeypatch.setenv("OPENAI_API_KEY", env_key)
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = tmp_path / "keys.db"
    with Store(path) as store:
        dataset_id, ids = samples(store, 2)
        spec = JobSpec("reflect", dataset_id, oracle=oracle_for(fake_oracle))
        run_id = store.start_background_job(dataset_id, spec.settings(), spec.record(),
                                            key_source=source, owner="")  # fmt: skip
        [taken] = supervise_once(store, owner="server-b", beat_every=0.1)
        assert wait_job(path, run_id, timeout=30)
        state = job_state(store, run_id)
        assert (taken.outcome, state.status) == (
            ("resumed", "done") if outcome == "done" else ("interrupted", "interrupted")
        )
        if outcome == "interrupted":
            assert "API key" in state.error and "Run page" in state.error
            assert "\n" not in state.error
            assert supervise_once(store, owner="server-c") == []  # no retrying in a loop


def test_where_a_key_came_from_is_a_name_never_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-2")
    assert [key_source(k) for k in (None, "", "sk-env-2", SECRET)] == [
        KEY_NONE, KEY_NONE, KEY_FROM_ENV, KEY_TYPED
    ]  # fmt: skip


def test_a_spec_is_stored_whole_but_for_its_key():
    judge = OracleConfig(model="judge-x", base_url="http://127.0.0.1:9/v1", api_key=SECRET,
                         concurrency=3, max_tokens=77, json_mode=True, rpm=10.0,
                         dialect="llama.cpp")  # fmt: skip
    reflect = OracleConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key=SECRET,
                           temperature=0.1, max_tokens=99, timeout=5.0, tpm=1000.0)  # fmt: skip
    specs = [
        JobSpec(
            "reflect", 3, selection=Selection("ids", ids="5 7", upto=9), mode="both", oracle=reflect
        ),  # fmt: skip
        JobSpec("reflect", 3, oracle=OracleConfig(base_url="http://127.0.0.1:9/v1")),
        JobSpec(
            "score",
            4,
            scoring=ScoringSettings(
                metrics=("judge", "text"), limit=9, kinds=("response",), judge=judge, pairwise=True
            ),
        ),  # fmt: skip
    ]
    for spec in specs:
        text = json.dumps(spec.record())
        assert SECRET not in text and "api_key" not in text
        assert JobSpec.from_record(json.loads(text), spec.api_key) == spec


def test_the_key_stays_out_of_the_database(tmp_path, fake_oracle):
    path = tmp_path / "secret.db"
    with Store(path) as store:
        dataset_id, ids = samples(store, 2)
    oracle = OracleConfig(model="fake-oracle", base_url=fake_oracle.base_url, api_key=SECRET)
    run_id = start_job(path, JobSpec("reflect", dataset_id, oracle=oracle))
    assert wait_job(path, run_id, timeout=30)
    with Store(path) as store:
        row = store.background_job(run_id)
        assert row.key_source == KEY_TYPED and row.spec["oracle"]["model"] == "fake-oracle"
        store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    for file in path.parent.iterdir():
        assert SECRET.encode() not in file.read_bytes(), file


# --- what pages show ------------------------------------------------------------------------


def test_where_says_which_server_and_who_took_over():
    state = JobState(run_id=1, task="reflect", status="running", owner="b:2:y",
                     takeovers=[{"by": "a:1:x", "from": "", "at": "x"},
                                {"by": "b:2:y", "from": "a:1:x", "at": "x"}])  # fmt: skip
    assert where(state) == "runs on b:2:y · taken over from a:1:x at x"
    state.status, state.stalled, state.silent_for = "running", True, 75.2
    assert where(state).endswith("has not answered for 75 s; another server will take it over")
    assert where(JobState(run_id=2, task="score", status="done")) == ""


def test_the_run_page_shows_which_server_runs_each_job_and_takeovers(tmp_path, monkeypatch):
    path = tmp_path / "page.db"
    with Store(path) as store:
        built = build(store, 3, hostile=False)
        dataset_id = built["dataset"].id
        spec = JobSpec("score", dataset_id, scoring=ScoringSettings())
        run_id = store.start_background_job(dataset_id, spec.settings(), spec.record(),
                                            key_source=KEY_NONE, owner="host-a:11:aa")  # fmt: skip
        assert store.claim_background_job("host-b:22:bb", -1.0) is not None
        store.finish_background_job(run_id, "host-b:22:bb", "done",
                                    counters={"done": 3, "total": 3})  # fmt: skip
    monkeypatch.setenv("REFLECTION_DB", str(path))
    at = AppTest.from_file(str(ROOT / "pages" / "4_Run.py"), default_timeout=60).run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert escape_markdown("ran on host-b:22:bb · taken over from host-a:11:aa") in captions


def test_a_supervisor_says_once_that_its_database_is_away_and_looks_less_often(
    tmp_path, capsys, monkeypatch
):
    """A database that cannot be opened (here a file that is not one; on a team server,
    PostgreSQL down) is reported once, not at every sweep, and is looked at less and less
    often; when it answers again the supervisor says so."""
    db = tmp_path / "away.db"
    db.write_bytes(b"not a database " * 100)
    sweeps: list[float] = []
    real_store = supervisor_module.Store

    def counting_store(path):
        if Path(path) == db:  # not the sweeps of other tests' supervisors in this process
            sweeps.append(time.monotonic())
        return real_store(path)

    monkeypatch.setattr(supervisor_module, "Store", counting_store)
    said: list[str] = []
    watcher = Supervisor(db, poll_every=0.05).start()
    deadline = time.monotonic() + 20
    while len(sweeps) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    db.unlink()
    Store(db).close()  # a real database now: the next sweep succeeds
    while time.monotonic() < deadline and "answers again" not in "".join(said):
        said.append(capsys.readouterr().err)
        time.sleep(0.05)
    watcher.close(5)
    text = "".join(said) + capsys.readouterr().err
    assert text.count("cannot open as a Reflection Studio database") == 1, text
    assert text.count("answers again") == 1, text
    gaps = [b - a for a, b in zip(sweeps, sweeps[1:], strict=False)]
    assert len(sweeps) >= 4 and gaps[1] > gaps[0] * 1.5 and gaps[2] > gaps[1] * 1.5, gaps
