"""The store: migrations, append-only reviews with undo, candidates, scores, runs, cache."""

from __future__ import annotations

import pytest

from reflection.errors import NotFoundError, ReflectionError, StoreError
from reflection.records import Candidate, Review, Sample, Score
from reflection.store import MIGRATIONS, Store
from reflection.store.base import INTEGRITY_ERRORS

pytestmark = pytest.mark.both_backends


@pytest.fixture
def sample_ids(store):
    ds = store.ensure_dataset("d")
    store.add_samples(
        ds.id, [Sample(instruction=f"i{n}", output=f"o{n}", position=n) for n in range(3)]
    )
    return store.sample_ids(ds.id)


def _candidate(store, sample_id, kind="response", **fields):
    return store.add_candidate(Candidate(sample_id=sample_id, kind=kind, output="better", **fields))


def test_migrations_are_recorded_and_applied_once(tmp_path):
    path = tmp_path / "m.db"
    Store(path).close()
    with Store(path) as again:
        names = [r["name"] for r in again.query("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert names[0] == "m001_initial"


def test_wal_mode_and_busy_timeout(store, backend):
    if backend != "sqlite":
        pytest.skip("SQLite's journal and lock settings")
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA busy_timeout") == 30000


def test_a_big_write_leaves_no_big_wal_behind(tmp_path, monkeypatch):
    """After a large transaction is checkpointed, the next write cuts the WAL file back to
    WAL_KEEP_BYTES instead of leaving it at its largest size for good."""
    from reflection.store import base

    monkeypatch.setattr(base, "WAL_KEEP_BYTES", 256 << 10)
    path = tmp_path / "wal.db"
    wal = tmp_path / "wal.db-wal"
    with Store(path) as store:
        ds = store.ensure_dataset("d")
        text = "x" * 3000
        with store.staged_samples() as staging:
            staging.add(Sample(instruction=f"i{n}", output=text) for n in range(3000))
            with store.transaction():
                staging.publish(ds.id)
        assert wal.stat().st_size > 4 << 20  # the big transaction went through the WAL
        store.add_samples(ds.id, [Sample(instruction="one more", output="o")])
        assert wal.stat().st_size <= 256 << 10


def test_opening_a_non_database_says_so(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="cannot open as a Reflection Studio database"):
        Store(path)


# Each case: decisions in order (None candidate = original, "c" = the candidate), expected status
# and candidate in force afterwards.
UNDO_CASES = [
    ([], "undecided", None),
    ([("accept", "c")], "accepted", "c"),
    ([("accept", None)], "accepted", None),
    ([("reject", None)], "rejected", None),
    ([("accept", "c"), ("reject", None)], "rejected", None),
    ([("accept", "c"), ("reject", None), ("undo", None)], "accepted", "c"),
    ([("accept", "c"), ("reject", None), ("undo", None), ("undo", None)], "undecided", None),
    ([("undo", None)], "undecided", None),
    ([("undo", None), ("accept", None)], "accepted", None),
    ([("accept", None), ("undo", None), ("undo", None), ("reject", None)], "rejected", None),
    ([("skip", None)], "skipped", None),
    ([("reject", None), ("skip", None), ("undo", None)], "rejected", None),
    ([("accept", "c"), ("accept", None), ("reject", None), ("undo", None)], "accepted", None),
]


@pytest.mark.parametrize(("decisions", "status", "candidate"), UNDO_CASES)
def test_state_is_the_latest_review_in_force(store, sample_ids, decisions, status, candidate):
    sid = sample_ids[0]
    cid = _candidate(store, sid)
    for decision, which in decisions:
        store.add_review(
            Review(sample_id=sid, decision=decision, candidate_id=cid if which else None)
        )
    state = store.state(sid)
    assert (state.status, state.candidate_id) == (status, cid if candidate else None)
    assert len(store.reviews_for(sid)) == len(decisions)  # nothing was updated or deleted
    store.rebuild_states()  # the cache equals a replay of the log
    assert store.state(sid) == state


def test_edit_needs_an_edit_candidate_of_the_same_sample(store, sample_ids):
    reflected = _candidate(store, sample_ids[0])
    other = _candidate(store, sample_ids[1], kind="edit")
    with pytest.raises(ReflectionError, match="is not a human edit"):
        store.add_review(Review(sample_id=sample_ids[0], decision="edit", candidate_id=reflected))
    with pytest.raises(ReflectionError, match="is not a version of sample"):
        store.add_review(Review(sample_id=sample_ids[0], decision="accept", candidate_id=other))
    edit = _candidate(store, sample_ids[0], kind="edit", annotator="ana")
    store.add_review(
        Review(sample_id=sample_ids[0], decision="edit", candidate_id=edit, annotator="ana")
    )
    assert store.state(sample_ids[0]).status == "edited"


def test_bad_reviews_write_nothing(store, sample_ids):
    with pytest.raises(ReflectionError, match="unknown decision 'approve'"):
        store.add_reviews(
            [
                Review(sample_id=sample_ids[0], decision="accept"),
                Review(sample_id=sample_ids[1], decision="approve"),
            ]
        )
    with pytest.raises(NotFoundError):
        store.add_review(Review(sample_id=999, decision="accept"))
    assert store.scalar("SELECT count(*) FROM reviews") == 0
    assert store.state(sample_ids[0]).status == "undecided"


def test_undo_run_takes_back_a_bulk_run_only_where_still_in_force(store, sample_ids):
    run = store.start_run("bulk", 1, {"rule": "accept all"})
    store.add_reviews([Review(sample_id=s, decision="accept", run_id=run.id) for s in sample_ids])
    store.add_review(Review(sample_id=sample_ids[2], decision="reject", annotator="bob"))
    assert store.undo_run(run.id) == 2
    assert [store.state(s).status for s in sample_ids] == ["undecided", "undecided", "rejected"]


def test_status_counts(store, sample_ids):
    store.add_review(Review(sample_id=sample_ids[0], decision="reject"))
    counts = store.status_counts(store.dataset("d").id)
    assert counts == {"undecided": 2, "accepted": 0, "edited": 0, "rejected": 1, "skipped": 0}


def test_job_key_stores_a_job_once(store, sample_ids):
    first = Candidate(sample_id=sample_ids[0], kind="response", output="a", job_key="job-1")
    again = Candidate(sample_id=sample_ids[0], kind="response", output="b", job_key="job-1")
    ids = store.add_candidates([first]) + store.add_candidates([again])
    assert ids[0] == ids[1]
    assert [c.output for c in store.candidates_for(sample_ids[0])] == ["a"]
    assert store.done_job_keys(["job-1", "job-2"]) == {"job-1"}


def test_unknown_candidate_kind_is_refused(store, sample_ids):
    with pytest.raises(ValueError, match="unknown candidate kind"):
        store.add_candidate(Candidate(sample_id=sample_ids[0], kind="mystery"))


def test_scores_upsert_per_version_metric_and_scorer(store, sample_ids):
    sid = sample_ids[0]
    cid = _candidate(store, sid)
    store.put_scores(
        [
            Score(sample_id=sid, metric="ifd_ppl", value=0.9, scorer="m@alpaca"),
            Score(sample_id=sid, candidate_id=cid, metric="ifd_ppl", value=0.7, scorer="m@alpaca"),
        ]
    )
    store.put_scores([Score(sample_id=sid, metric="ifd_ppl", value=0.8, scorer="m@alpaca")])
    values = {(s.candidate_id, s.value) for s in store.scores_for(sid)}
    assert values == {(None, 0.8), (cid, 0.7)}
    assert store.scored_versions(sample_ids, "ifd_ppl", "m@alpaca") == {(sid, None), (sid, cid)}
    # Asked of other samples only, it says nothing of this one's versions.
    assert store.scored_versions(sample_ids[1:], "ifd_ppl", "m@alpaca") == set()
    assert store.scored_versions(sample_ids, "ifd_ppl", "other@alpaca") == set()


def test_run_settings_never_hold_secrets(store):
    run = store.start_run(
        "reflect",
        None,
        {"model": "gpt", "api_key": "sk-secret", "client": {"auth_token": "t", "n": 2}},
    )
    store.update_run(
        run.id, settings={"model": "gpt", "OPENAI_API_KEY": "sk-secret"}, status="done"
    )
    raw = store.scalar("SELECT settings FROM runs WHERE id = ?", [run.id])
    assert "sk-secret" not in raw and store.get_run(run.id).settings == {"model": "gpt"}
    assert store.get_run(run.id).finished_at


def test_cache_round_trip(store):
    assert store.cache_get("k") is None
    store.cache_put("k", "m", {"messages": []}, {"text": "hi"})
    assert store.cache_get("k") == {"text": "hi"}


def test_transaction_rolls_back_everything(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.ensure_dataset("gone")
        raise RuntimeError("boom")
    assert store.datasets() == []


def test_foreign_keys_are_enforced(store):
    with pytest.raises(INTEGRITY_ERRORS):
        store.add_candidate(Candidate(sample_id=12345, kind="response"))


def test_score_changes_follow_the_scores_in_any_order(store, sample_ids):
    from reflection.store.schema import m009_score_changes

    sid = sample_ids[0]
    first, second = _candidate(store, sid), _candidate(store, sid)

    def changes():
        rows = store.query(
            "SELECT candidate_id, metric, scorer, change FROM score_changes ORDER BY 1"
        )
        return [(r["candidate_id"], r["metric"], r["scorer"], round(r["change"], 6)) for r in rows]

    # A candidate scored before its original has no change yet.
    store.put_scores(
        [Score(sample_id=sid, candidate_id=first, metric="ifd_ppl", value=0.5, scorer="m")]
    )
    assert changes() == []
    store.put_scores(
        [
            Score(sample_id=sid, metric="ifd_ppl", value=0.9, scorer="m"),
            Score(sample_id=sid, candidate_id=second, metric="ifd_ppl", value=1.2, scorer="m"),
            Score(sample_id=sid, candidate_id=second, metric="ifd_ppl", value=0.1, scorer="other"),
        ]
    )
    assert changes() == [(first, "ifd_ppl", "m", -0.4), (second, "ifd_ppl", "m", 0.3)]
    store.put_scores([Score(sample_id=sid, metric="ifd_ppl", value=1.0, scorer="m")])
    assert changes() == [(first, "ifd_ppl", "m", -0.5), (second, "ifd_ppl", "m", 0.2)]
    # The table is derived: the migration's backfill rebuilds it from scores alone.
    before = changes()
    store.conn.execute("DROP TABLE score_changes")
    m009_score_changes(store.conn)
    assert changes() == before


def test_audit_log_is_append_only_ordered_and_scrubbed(tmp_path):
    with Store(tmp_path / "a.db") as store:
        first = store.add_audit_event("admin", "role_change", "ana", detail={"role": "viewer"})
        store.add_audit_event("ana", "sign_in_failed", "ana", detail={"password": "hunter2"})
        store.add_audit_event("admin", "role_change", "bo", dataset_id=None)
        events = store.audit_events()
        assert [(e.actor, e.action, e.target) for e in events] == [
            ("admin", "role_change", "ana"),
            ("ana", "sign_in_failed", "ana"),
            ("admin", "role_change", "bo"),
        ]
        assert events[0].id == first.id and events[0].detail == {"role": "viewer"}
        assert events[1].detail == {}  # nothing that looks like a secret is kept
        assert [e.target for e in store.audit_events(action="role_change", limit=1)] == ["bo"]
        assert [e.action for e in store.audit_events(actor="ana")] == ["sign_in_failed"]
    raw = (tmp_path / "a.db").read_bytes()
    assert b"hunter2" not in raw
