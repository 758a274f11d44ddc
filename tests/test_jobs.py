"""Background jobs: real threads, a real SQLite file, and the fake oracle over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
from appdata import build
from oracle_server import OracleServer

from reflection import ConfigError, Sample
from reflection.jobs import (
    JobSpec,
    Selection,
    job_state,
    jobs,
    parse_ids,
    reap,
    select_samples,
    start_job,
    stop_job,
    wait_job,
)
from reflection.reflect.settings import OracleConfig
from reflection.scoring.settings import ScoringSettings
from reflection.store import Store

SECRET = "sk-test-DO-NOT-STORE-4242"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "jobs.db"
    with Store(path) as store:
        built = build(store, 12, hostile=False)
    return path, built


@pytest.fixture(scope="module")
def oracle():
    with OracleServer() as server:
        yield server


def test_reflection_job_runs_in_the_background_on_a_selection(db, oracle):
    path, built = db
    chosen = built["ids"][:4]
    oracle.configure(latency=0.05)
    config = OracleConfig(model="fake-oracle", base_url=oracle.base_url, concurrency=2,
                          api_key=SECRET)  # fmt: skip
    spec = JobSpec("reflect", built["dataset"].id, selection=Selection("first", first=4),
                   mode="response", oracle=config)  # fmt: skip
    run_id = start_job(path, spec)
    with Store(path) as store:  # another connection, as another page session would have
        assert job_state(store, run_id).status in ("running", "done")
        assert wait_job(path, run_id, timeout=60)
        state = job_state(store, run_id)
        assert state.status == "done", state.error
        assert (state.done, state.total) == (4, 4)
        inner = store.get_run(state.inner_run_id)
        assert inner.kind == "reflect" and inner.status == "done"
        fresh = [c for c in store.candidates_for_samples(built["ids"]).values() for c in c]
        new = [c for c in fresh if c.run_id == inner.id]
        assert sorted(c.sample_id for c in new) == sorted(chosen)
        assert {c.kind for c in new} == {"response"}
        assert state.settings["samples"] == "first 4"
        assert state.settings["base_url"] == oracle.base_url


def test_the_key_is_never_written(db, oracle):
    path, built = db
    oracle.configure(latency=0.0)
    config = OracleConfig(model="fake-oracle", base_url=oracle.base_url, api_key=SECRET)
    spec = JobSpec("reflect", built["dataset"].id, selection=Selection("first", first=2),
                   oracle=config)  # fmt: skip
    run_id = start_job(path, spec)
    assert wait_job(path, run_id, timeout=60)
    with Store(path) as store:
        assert job_state(store, run_id).status == "done"
        store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    for file in path.parent.iterdir():
        assert SECRET.encode() not in file.read_bytes(), file


def test_progress_is_visible_while_running_and_stop_ends_it(db, oracle):
    path, built = db
    oracle.configure(latency=0.4)
    config = OracleConfig(model="fake-oracle", base_url=oracle.base_url, concurrency=1)
    spec = JobSpec("reflect", built["dataset"].id, oracle=config)
    run_id = start_job(path, spec)
    seen = []
    with Store(path) as store:
        deadline = time.time() + 30
        while time.time() < deadline:
            state = job_state(store, run_id)
            seen.append((state.status, state.done))
            if state.status == "running" and state.done >= 2:
                break
            time.sleep(0.1)
        assert stop_job(path, run_id)
        assert wait_job(path, run_id, timeout=30)
        state = job_state(store, run_id)
    assert state.status == "stopped"
    assert 2 <= state.done < 12
    assert ("running", 0) in seen or seen[0][0] == "running"
    assert not stop_job(path, run_id)  # already over


def test_a_job_whose_process_died_reads_as_interrupted(db):
    path, built = db
    with Store(path) as store:
        run = store.start_run("job", built["dataset"].id, {"task": "reflect"})
        store.update_run(run.id, counters={"done": 3, "total": 9, "heartbeat": time.time() - 600})
        fresh = store.start_run("job", built["dataset"].id, {"task": "reflect"})
        store.update_run(fresh.id, counters={"done": 0, "total": 9, "heartbeat": time.time()})
        assert job_state(store, run.id).status == "interrupted"
        assert job_state(store, fresh.id).status == "running"  # another process may own it
        assert reap(store) == 1
        assert store.get_run(run.id).status == "interrupted"
        assert [j.run_id for j in jobs(store, built["dataset"].id)] == [fresh.id, run.id]


def test_text_scoring_job(db):
    path, built = db
    spec = JobSpec("score", built["dataset"].id, scoring=ScoringSettings(metrics=("text",)))
    run_id = start_job(path, spec)
    assert wait_job(path, run_id, timeout=60)
    with Store(path) as store:
        state = job_state(store, run_id)
        assert state.status == "done", state.error
        assert state.done == state.total > 0
        inner = store.get_run(state.inner_run_id)
        assert inner.kind == "score" and inner.counters["scored"] > 0
        assert ("words_output", "text") in store.scorers("words_output")


def test_a_failing_job_records_its_error(db, oracle):
    path, built = db
    oracle.configure(latency=0.0, status=401)  # a wrong key: no retry can fix it
    try:
        config = OracleConfig(model="fake-oracle", base_url=oracle.base_url, max_attempts=1)
        run_id = start_job(path, JobSpec("reflect", built["dataset"].id, oracle=config))
        assert wait_job(path, run_id, timeout=30)
    finally:
        oracle.configure(status=0)
    with Store(path) as store:
        state = job_state(store, run_id)
    assert state.status == "failed" and "401" in state.error


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec("dance", 1),
        JobSpec("score", 1),
        JobSpec("score", 1, scoring=ScoringSettings(metrics=("vibes",))),
        JobSpec("reflect", 1),
        JobSpec("reflect", 1, oracle=OracleConfig(model="", base_url="http://127.0.0.1:9/v1")),
        JobSpec("reflect", 1, oracle=OracleConfig(base_url="http://127.0.0.1:9/v1", concurrency=0)),
        JobSpec(
            "reflect", 1, mode="sideways", oracle=OracleConfig(base_url="http://127.0.0.1:9/v1")
        ),
    ],
)
def test_bad_specs_are_refused_before_a_thread_starts(db, spec):
    path, _ = db
    with pytest.raises(ConfigError):
        start_job(path, spec)
    with Store(path) as store:
        assert store.runs("job") == []


@pytest.mark.parametrize(
    ("text", "ids"),
    [("3", [3]), ("3, 7-9 12", [3, 7, 8, 9, 12]), ("5-5,5", [5]), ("", []), (" 1 ,2,", [1, 2])],
)
def test_parse_ids(text, ids):
    assert parse_ids(text) == ids


@pytest.mark.parametrize("text", ["x", "3-", "9-2", "1-99999999", "1.5"])
def test_parse_ids_refuses(text):
    with pytest.raises(ConfigError):
        parse_ids(text)


def test_select_samples(db):
    path, built = db
    ids = built["ids"]
    with Store(path) as store:
        dataset_id = built["dataset"].id

        def chosen(how: str, **kw) -> list[int] | None:
            found = select_samples(store, dataset_id, how, **kw).sample_ids(store, dataset_id)
            return None if found is None else found.tolist()

        assert chosen("all") == ids  # bounded: a job names the samples there when it starts
        assert select_samples(store, dataset_id, "all", bound=False).sample_ids(
            store, dataset_id
        ) is None  # fmt: skip
        assert chosen("first", first=3) == ids[:3]
        assert chosen("ids", ids=f"{ids[2]}-{ids[4]}") == ids[2:5]
        from reflection.records import Review

        store.add_review(Review(sample_id=ids[0], decision="reject"))
        assert chosen("undecided") == ids[1:]
        with pytest.raises(ConfigError):
            select_samples(store, dataset_id, "ids", ids=str(max(ids) + 100))
        other = store.ensure_dataset("other")
        store.add_samples(other.id, [Sample(instruction="elsewhere", output="x")])
        [elsewhere] = store.sample_ids(other.id)
        with pytest.raises(ConfigError, match=f"sample {elsewhere} is not in this dataset"):
            select_samples(store, dataset_id, "ids", ids=f"{ids[0]} {elsewhere}")
        with pytest.raises(ConfigError, match="at least one"):
            select_samples(store, dataset_id, "first", first=0)


def test_an_undecided_selection_is_kept_as_its_rule_and_worked_out_when_the_job_runs(db):
    """The spec keeps the rule and a bound, never the ids (at 10,000,000 undecided samples
    it had kept all of them as JSON). When the job runs, samples decided since it was
    started are left out, and so are samples added after it."""
    path, built = db
    ids = built["ids"]
    with Store(path) as store:
        dataset_id = built["dataset"].id
        selection = select_samples(store, dataset_id, "undecided")
        config = OracleConfig(model="m", base_url="http://127.0.0.1:9/v1")
        record = JobSpec("reflect", dataset_id, selection=selection, oracle=config).record()
        assert record["selection"] == {"how": "undecided", "first": 0, "ids": "",
                                       "upto": max(ids)}  # fmt: skip
        assert len(json.dumps(record["selection"])) < 100
        from reflection.records import Review

        store.add_review(Review(sample_id=ids[3], decision="accept"))
        store.add_samples(dataset_id, [Sample(instruction="added later", output="x")])
        later = max(store.sample_ids(dataset_id))
        assert later > max(ids)
        rebuilt = JobSpec.from_record(json.loads(json.dumps(record)))
        found = rebuilt.selection.sample_ids(store, dataset_id)
        assert found is not None and found.tolist() == [i for i in ids if i != ids[3]]
        few = rebuilt.selection.sample_ids(store, dataset_id, limit=4)  # the first 4 only
        assert few is not None and few.tolist() == [i for i in ids if i != ids[3]][:4]
        first = Selection("first", first=5, upto=max(ids)).sample_ids(store, dataset_id, limit=2)
        assert first is not None and first.tolist() == ids[:2]
        every = Selection("all", upto=max(ids)).sample_ids(store, dataset_id)
        assert every is not None and every.tolist() == ids  # the later sample stays out
        again = select_samples(store, dataset_id, "undecided").sample_ids(store, dataset_id)
        assert again is not None and set(again) == {*ids, later} - {ids[3]}


def test_a_job_recorded_with_its_ids_still_runs_on_them():
    """Jobs recorded before selections became rules kept a list of ids; they load as typed
    ids, runs written as ranges."""
    ids = [4, 5, 6, 7, 9, 20, 21]
    config = {"model": "m", "base_url": "http://127.0.0.1:9/v1"}
    spec = JobSpec.from_record(
        {"task": "reflect", "dataset_id": 1, "sample_ids": ids, "mode": "both", "oracle": config}
    )
    assert spec.selection == Selection("ids", ids="4-7 9 20-21")
    assert parse_ids(spec.selection.ids) == ids
