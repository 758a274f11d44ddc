"""The counts the store keeps as it writes (migration m018): samples per dataset and samples
by review status, on SQLite and on PostgreSQL, through every kind of write, a store copy and
an upgrade of a store made before them; and on PostgreSQL, writers never wait on each other's
counts."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from reflection.records import Candidate, Review, Sample, Score
from reflection.review.overview import dataset_overview
from reflection.store import Store
from reflection.store.bulk_counts import _count_sql
from reflection.store.copy import copy_store
from reflection.store.tallies import FOLD_AT


def _samples(n: int, tag: str = "") -> list[Sample]:
    return [Sample(instruction=f"Question {tag}{i}", output=f"Answer {i}") for i in range(n)]


def _counted(store: Store, dataset_id: int) -> dict[str, int]:
    """The status counts the slow way: every sample's status, counted in Python."""
    ids = store.sample_ids(dataset_id)
    counts = Counter(store.statuses_of(ids).values())
    return {status: counts.get(status, 0) for status in store.status_counts(dataset_id)}


@pytest.mark.both_backends
def test_counts_follow_imports_decisions_undo_and_a_rebuild(store):
    first = store.ensure_dataset("first")
    other = store.ensure_dataset("other")
    store.add_samples(first.id, _samples(40))
    store.add_samples(other.id, _samples(7, "o"))
    ids = store.sample_ids(first.id)
    assert store.status_counts(first.id) == {
        "undecided": 40, "accepted": 0, "edited": 0, "rejected": 0, "skipped": 0,
    }  # fmt: skip
    store.add_reviews(Review(sid, "accept") for sid in ids[:10])
    store.add_review(Review(ids[0], "reject"))  # a change of mind: accepted -> rejected
    store.add_review(Review(ids[1], "skip"))
    store.undo(ids[2])  # back to undecided
    store.add_samples(first.id, _samples(5, "late"))  # a second import into the same dataset
    assert store.status_counts(first.id) == _counted(store, first.id)
    assert store.status_counts(first.id) == {
        "undecided": 36, "accepted": 7, "edited": 0, "rejected": 1, "skipped": 1,
    }  # fmt: skip
    assert store.count_samples(first.id) == 45
    assert store.count_samples(other.id) == 7
    assert store.count_samples() == 52
    assert store.status_counts()["undecided"] == 36 + 7  # all datasets
    assert {d.name: d.sample_count for d in store.datasets()} == {"first": 45, "other": 7}
    store.rebuild_states()  # deletes every state row and replays the log
    assert store.status_counts(first.id) == _counted(store, first.id)
    assert store.tally_check() == []


@pytest.mark.both_backends
def test_candidates_and_scores_with_a_value_are_counted_per_dataset(store):
    first = store.ensure_dataset("first")
    other = store.ensure_dataset("other")
    store.add_samples(first.id, _samples(6))
    store.add_samples(other.id, _samples(3, "o"))
    a, b = store.sample_ids(first.id)[:2]
    [c] = store.sample_ids(other.id)[:1]
    cid = store.add_candidate(Candidate(sample_id=a, kind="response", instruction="q", output="x"))
    store.add_candidate(Candidate(sample_id=c, kind="response", instruction="q", output="y"))
    store.put_scores([
        Score(a, "ifd_ppl", 0.5), Score(a, "ifd_ppl", 0.4, candidate_id=cid),
        Score(b, "ifd_ppl", None),  # a failed scoring: no value, not counted
        Score(c, "judge", 7.0),
    ])  # fmt: skip
    assert (store.count_candidates(first.id), store.count_scores(first.id)) == (1, 2)
    assert (store.count_candidates(other.id), store.count_scores(other.id)) == (1, 1)
    store.put_scores([Score(b, "ifd_ppl", 0.9), Score(a, "ifd_ppl", 0.6)])  # rescored in place
    assert store.count_scores(first.id) == 3
    assert (store.count_candidates(), store.count_scores()) == (2, 4)
    assert dataset_overview(store, first.id)["scored"] == 3
    assert store.tally_check() == []


@pytest.mark.both_backends
def test_a_failed_write_leaves_the_counts_as_they_were(store):
    data = store.ensure_dataset("d")
    store.add_samples(data.id, _samples(5))
    ids = store.sample_ids(data.id)
    before = store.status_counts(data.id)
    with pytest.raises(Exception, match="unknown decision"):
        store.add_reviews([Review(ids[0], "accept"), Review(ids[1], "maybe")])
    assert store.status_counts(data.id) == before
    assert store.tally_check() == []


def _triggers(store: Store) -> list[tuple[str, str]]:
    return store.conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    ).fetchall()


def test_the_counts_after_a_publish_run_with_the_usual_page_cache(tmp_path):
    """SQLite lets a sort hold as much memory as the main page cache may, on top of it: the
    publish's large page cache is for its INSERT only, and back to the usual size before the
    counts that follow (with the counts under it, a 10M import peaked at 612 MB; 3M: 441 MB
    before, 342 after)."""
    with Store(tmp_path / "s.db") as store:
        data = store.ensure_dataset("d")
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        assert store.add_samples(data.id, _samples(30)) == (30, 0)
        store.conn.set_trace_callback(None)  # type: ignore[attr-defined]

    def where(prefix: str) -> list[int]:
        return [i for i, sql in enumerate(statements) if sql.startswith(prefix)]

    sizes, (insert,) = where("PRAGMA main.cache_size ="), where("INSERT OR IGNORE INTO samples")
    assert len(sizes) == 2 and sizes[0] < insert < sizes[1] < min(where("UPDATE tallies"))


def test_a_publishs_count_of_its_samples_sorts_nothing(tmp_path):
    """The samples' count after a publish reads the (dataset, position) index in its order:
    grouped also by its constant name, SQLite put every new row through a sort."""
    with Store(tmp_path / "s.db") as store:
        for by_index in (True, False):
            (sql,) = (sql for name, sql in _count_sql("samples", [], by_index=by_index)
                      if name == "samples_tally_insert")  # fmt: skip
            plan = [row[-1] for row in store.conn.execute(
                "EXPLAIN QUERY PLAN " + sql, [0] * sql.count("?"))]  # fmt: skip
            assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_publish_counts_its_samples_at_once_and_leaves_the_row_trigger_in_place(store):
    """SQLite's publish drops the per-row count trigger for its one INSERT and adds the count
    itself: the trigger must come back as it was, after a publish and after one that fails,
    and go on counting other writers' rows."""
    data = store.ensure_dataset("d")
    triggers = _triggers(store)
    assert ("samples_tally_insert",) in [(name,) for name, _ in triggers]
    assert store.add_samples(data.id, _samples(30) + _samples(5)) == (30, 5)  # 5 repeats
    assert _triggers(store) == triggers
    assert store.count_samples(data.id) == 30
    with pytest.raises(RuntimeError, match="after the publish"), store.staged_samples() as st:
        st.add(_samples(8, "lost"))
        with store.transaction():
            st.publish(data.id)
            raise RuntimeError("after the publish")
    assert _triggers(store) == triggers
    assert store.count_samples(data.id) == 30
    with store.transaction():  # a writer that is not a publish: the trigger counts its row
        store.conn.execute(
            "INSERT INTO samples (dataset_id, instruction, content_hash, created_at)"
            " VALUES (?, 'raw', 'raw', 'now')",
            [data.id],
        )
    assert store.count_samples(data.id) == 31
    assert store.tally_check() == []


def _forget_tallies(store: Store) -> None:
    """Make the store as it was before m018: no count tables, triggers or record of it."""
    tables = ("samples", "sample_state", "candidates", "scores")
    with store.transaction():
        if store.dialect == "sqlite":
            for table in tables:
                for op in ("insert", "delete", "update"):
                    store.conn.execute(f"DROP TRIGGER {table}_tally_{op}")
            store.conn.execute("DROP TRIGGER datasets_tally_insert")
            store.conn.execute("DROP TRIGGER datasets_tally_delete")
        else:
            for table in tables:
                store.conn.execute(f"DROP FUNCTION {table}_tally() CASCADE")  # and triggers
        forget_kept_flags(store)
        forget_kept_acceptance(store)
        store.conn.execute("DROP TABLE tallies")
        store.conn.execute("DROP TABLE tally_deltas")
        store.conn.execute("DELETE FROM _migrations WHERE name = 'm018_tallies'")


def _forget(store: Store, part: str, tables: tuple[str, ...], names: str, migration: str) -> None:
    """Take out the kept counts of one migration: its triggers (their names hold `part`; on
    PostgreSQL the functions `<table>_<part>_tally` of `tables`, and their triggers with
    them), the counts named as `names` selects, and its record."""
    if store.dialect == "sqlite":
        for (name,) in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?", [f"%{part}%"]
        ).fetchall():
            store.conn.execute(f"DROP TRIGGER {name}")
    else:
        for table in tables:
            store.conn.execute(f"DROP FUNCTION {table}_{part}_tally() CASCADE")
    for table in ("tallies", "tally_deltas"):
        store.conn.execute(f"DELETE FROM {table} WHERE {names}")
    store.conn.execute("DELETE FROM _migrations WHERE name = ?", [migration])


def forget_kept_flags(store: Store) -> None:
    """Make the store as it was before m020: no flag tallies, their triggers or its record
    (inside the caller's transaction)."""
    _forget(store, "flag", ("scores", "candidates"),
            "name LIKE 'flag:%' OR name = 'with_candidates'", "m020_kept_flags")  # fmt: skip


def forget_kept_acceptance(store: Store) -> None:
    """Make the store as it was before m025: no acceptance tallies, their triggers or its
    record (inside the caller's transaction)."""
    _forget(store, "acceptance", ("sample_state", "candidates"),
            "name LIKE 'offered:%' OR name LIKE 'accepted:%'", "m025_kept_acceptance")  # fmt: skip


@pytest.mark.both_backends
def test_a_store_from_before_the_counts_gets_them_on_upgrade(store_target):
    with Store(store_target) as old:
        _forget_tallies(old)
        # as an old version wrote it (`dataset()` now reads its sample count from the tallies)
        old.conn.execute("INSERT INTO datasets (name, created_at) VALUES ('d', '')")
        data_id = old.count("SELECT id FROM datasets WHERE name = 'd'")
        old.add_samples(data_id, _samples(12))  # written with no trigger to count them
        ids = old.sample_ids(data_id)
        old.add_reviews([Review(ids[0], "accept"), Review(ids[1], "reject")])
    with Store(store_target) as upgraded:  # opening migrates: m018 counts what is there
        assert upgraded.status_counts(data_id) == {
            "undecided": 10, "accepted": 1, "edited": 0, "rejected": 1, "skipped": 0,
        }  # fmt: skip
        assert upgraded.tally_check() == []
        assert upgraded.dataset("d").sample_count == 12
        upgraded.add_review(Review(ids[2], "skip"))  # and its triggers count from then on
        assert upgraded.status_counts(data_id)["skipped"] == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_store_copied_into_postgresql_counts_what_it_holds(store, tmp_path):
    with Store(tmp_path / "source.db") as source:
        data = source.ensure_dataset("d")
        source.add_samples(data.id, _samples(25))
        ids = source.sample_ids(data.id)
        source.add_candidate(Candidate(sample_id=ids[0], kind="response", instruction="q",
                                       output="x"))  # fmt: skip
        source.put_scores([Score(sid, "ifd_ppl", 0.5) for sid in ids[:4]])
        source.add_reviews(Review(sid, "reject") for sid in ids[:6])
        copy_store(source, store)  # COPY into PostgreSQL: its statement triggers count
        expected = (source.status_counts(data.id), source.count_candidates(data.id),
                    source.count_scores(data.id))  # fmt: skip
    assert (store.status_counts(data.id), store.count_candidates(data.id),
            store.count_scores(data.id)) == expected  # fmt: skip
    assert expected[0]["rejected"] == 6 and expected[1:] == (1, 4)
    assert store.tally_check() == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_copied_store_counts_what_it_holds(store, tmp_path):
    data = store.ensure_dataset("d")
    store.add_samples(data.id, _samples(30))
    ids = store.sample_ids(data.id)
    store.add_reviews(Review(sid, "accept" if sid % 2 else "reject") for sid in ids[:9])
    copied = tmp_path / "copied.db"
    with Store(copied) as destination:
        copy_store(store, destination)
        assert destination.status_counts(data.id) == store.status_counts(data.id)
        assert destination.count_samples(data.id) == 30
        assert destination.tally_check() == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_writers_do_not_wait_on_each_others_counts(store, store_target):
    data = store.ensure_dataset("d")
    store.add_samples(data.id, _samples(4))
    a, b = store.sample_ids(data.id)[:2]
    store.add_reviews([Review(a, "accept"), Review(b, "reject")])
    done, errors = threading.Event(), []

    def other_reviewer() -> None:
        try:
            with Store(store_target) as mine:
                mine.add_review(Review(b, "accept"))  # rejected -> accepted
            done.set()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # One reviewer's decision (accepted -> rejected) is still open when another moves the
    # same two counts the other way: counts kept in shared rows would make the second wait
    # for the first (or deadlock); appended deltas do not.
    with store.transaction():
        store.add_review(Review(a, "reject"))
        worker = threading.Thread(target=other_reviewer)
        worker.start()
        assert done.wait(20), "the second decision waited for the first one's transaction"
    worker.join()
    assert errors == []
    assert store.status_counts(data.id) == _counted(store, data.id)
    assert store.status_counts(data.id)["accepted"] == 1
    assert store.status_counts(data.id)["rejected"] == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_folds_its_delta_rows(store):
    data = store.ensure_dataset("d")
    store.add_samples(data.id, _samples(FOLD_AT + 50))
    ids = store.sample_ids(data.id)
    for sid in ids:  # one statement each: a delta row each
        store.add_review(Review(sid, "accept"))
    assert store.count("SELECT count(*) FROM tally_deltas") > FOLD_AT
    assert store.status_counts(data.id)["accepted"] == len(ids)  # this read folds them
    assert store.count("SELECT count(*) FROM tally_deltas") == 0
    assert store.status_counts(data.id) == {
        "undecided": 0, "accepted": len(ids), "edited": 0, "rejected": 0, "skipped": 0,
    }  # fmt: skip
    assert store.tally_check() == []
