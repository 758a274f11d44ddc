"""Assignment with overlap: balance and overlap as properties, reassignment, blind queues,
and how an assigned sample's state settles from its reviewers' decisions."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflection.errors import NotFoundError, ReflectionError
from reflection.records import Candidate, Review, Sample
from reflection.review.queue import QueueQuery, ReviewSession, load_item
from reflection.store import Store
from reflection.team import assign
from reflection.team.adjudicate import adjudicate, undo_adjudication

pytestmark = pytest.mark.both_backends

NAMES = [f"r{n}" for n in range(12)]


def _dataset(store: Store, n: int, name: str = "d") -> list[int]:
    ds = store.ensure_dataset(name)
    store.add_samples(
        ds.id, [Sample(instruction=f"{name} q{i}", output="a", position=i) for i in range(n)]
    )
    return store.sample_ids(ds.id)


def _active(store: Store, dataset_id: int) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    rows = store.query(
        "SELECT sample_id, reviewer FROM assignments WHERE dataset_id = ? AND state = 'active'",
        [dataset_id],
    )
    for row in rows:
        found.setdefault(row["sample_id"], []).append(row["reviewer"])
    return found


# --- the dealer: pure, properties -------------------------------------------------------------


@st.composite
def deals(draw):
    k = draw(st.integers(1, len(NAMES)))
    return (
        NAMES[:k],
        draw(st.integers(1, k)),
        draw(st.integers(0, 400)),
        draw(st.integers(0, 2**32)),
    )


@given(deals())
def test_each_sample_gets_overlap_distinct_reviewers_balanced_across_them(deal):
    reviewers, overlap, n, seed = deal
    pairs = list(assign.Dealer(reviewers, overlap, seed).deal(range(n)))
    by_sample: dict[int, list[str]] = {}
    for sample_id, reviewer in pairs:
        by_sample.setdefault(sample_id, []).append(reviewer)
    assert sorted(by_sample) == list(range(n))
    for hand in by_sample.values():
        assert len(hand) == overlap
        assert len(set(hand)) == overlap
        assert set(hand) <= set(reviewers)
    loads = Counter(reviewer for _, reviewer in pairs)
    counts = [loads.get(r, 0) for r in reviewers]
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == n * overlap


@given(deals())
def test_the_deal_is_deterministic_given_the_seed(deal):
    reviewers, overlap, n, seed = deal
    first = list(assign.Dealer(reviewers, overlap, seed).deal(range(n)))
    assert first == list(assign.Dealer(reviewers, overlap, seed).deal(range(n)))


@given(deals(), st.lists(st.integers(0, 30), min_size=len(NAMES), max_size=len(NAMES)))
def test_unequal_loads_even_out_and_never_spread_further(deal, existing):
    reviewers, overlap, n, seed = deal
    loads = dict(zip(reviewers, existing, strict=False))
    spread = max(loads.values()) - min(loads.values())
    final = dict(loads)
    for _, reviewer in assign.Dealer(reviewers, overlap, seed, loads).deal(range(n)):
        final[reviewer] += 1
    after = max(final.values()) - min(final.values())
    assert after <= max(1, spread)
    if overlap < len(reviewers) and n >= spread * len(reviewers):
        assert after <= 1  # (with everyone on every sample, nobody can catch up)


def test_every_pair_of_reviewers_shares_samples():
    # Cohen's kappa per pair needs each pair to meet: rounds are reshuffled, not rotated.
    pairs = list(assign.Dealer(NAMES[:6], 2, seed=3).deal(range(600)))
    met = Counter()
    for sample_id in range(600):
        hand = sorted(r for s, r in pairs[2 * sample_id : 2 * sample_id + 2])
        met[tuple(hand)] += 1
    assert len(met) == 15  # all C(6, 2) pairs
    assert min(met.values()) > 10


@pytest.mark.parametrize(
    ("reviewers", "overlap", "message"),
    [
        (["a", "b"], 3, "between 1 and the number of reviewers"),
        (["a", "b"], 0, "between 1 and the number of reviewers"),
        (["a", "a"], 1, "a given more than once"),
        ([], 1, "one or more names"),
        (["a", " "], 1, "none of them empty"),
    ],
)
def test_bad_assignment_requests_are_refused(reviewers, overlap, message):
    with pytest.raises(ReflectionError, match=message):
        assign.Dealer(reviewers, overlap)


def test_parse_names():
    assert assign.parse_names(" ann, bob ,,cy ") == ["ann", "bob", "cy"]


# --- assigning a dataset in the store ---------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 40),
    k=st.integers(1, 5),
    data=st.data(),
)
def test_assign_dataset_streams_in_chunks_and_keeps_the_properties(n, k, data):
    overlap = data.draw(st.integers(1, k))
    limit = data.draw(st.none() | st.integers(0, 45))
    seed = data.draw(st.integers(0, 1000))
    reviewers = NAMES[:k]
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "a.db") as store:
        ids = _dataset(store, n)
        old_chunk, assign.CHUNK = assign.CHUNK, 7  # chunk boundaries inside small datasets
        try:
            result = assign.assign_dataset(store, "d", reviewers, overlap, limit=limit, seed=seed)
            expected = n if limit is None else min(n, limit)
            assert result.samples == expected
            active = _active(store, store.dataset("d").id)
            assert sorted(active) == ids[:expected]  # the first ones, in id order
            assert all(len(set(h)) == len(h) == overlap for h in active.values())
            loads = [result.loads.get(r, 0) for r in reviewers]
            assert max(loads) - min(loads) <= 1
            # A second run assigns the rest and leaves what was assigned alone.
            again = assign.assign_dataset(store, "d", reviewers, overlap, seed=seed + 1)
            assert again.samples == n - expected
            after = _active(store, store.dataset("d").id)
            assert sorted(after) == ids
            assert {s: after[s] for s in active} == active
        finally:
            assign.CHUNK = old_chunk


def test_assign_is_audited_and_later_runs_even_out_loads(store):
    _dataset(store, 10)
    assign.assign_dataset(store, "d", ["a", "b"], 1, limit=4, actor="boss")
    result = assign.assign_dataset(store, "d", ["a", "b", "c"], 1, actor="boss")
    # c started with nothing: it catches up with a and b first.
    assert sorted(result.loads.values()) == [3, 3, 4]
    events = store.audit_events(action="assign")
    assert [e.actor for e in events] == ["boss", "boss"]
    assert events[0].detail["reviewers"] == ["a", "b"]
    assert events[0].detail["samples"] == 4 and events[1].detail["samples"] == 6
    assert events[0].target == "d" and events[0].dataset_id == store.dataset("d").id


def test_assign_needs_a_known_dataset(store):
    with pytest.raises(NotFoundError, match="no dataset 'nope'"):
        assign.assign_dataset(store, "nope", ["a"], 1)


# --- reassignment ------------------------------------------------------------------------------


def test_reassign_moves_only_open_work_and_never_adds_a_reviewer(store):
    ids = _dataset(store, 12)
    assign.assign_dataset(store, "d", ["a", "b", "c"], 2, seed=5)
    ds = store.dataset("d")
    mine = store.open_assignments(ds.id, "b")
    decided, skipped = mine[0], mine[1]
    store.add_review(Review(sample_id=decided, decision="reject", annotator="b"))
    store.add_review(Review(sample_id=skipped, decision="skip", annotator="b"))
    result = assign.reassign(store, "d", "b", ["a", "c", "d"], actor="boss")
    active = _active(store, ds.id)
    assert result.moved + result.unplaced == len(mine) - 1  # the skipped one is still open
    assert "b" in active[decided]
    assert all(len(hand) == 2 and len(set(hand)) == 2 for hand in active.values())
    assert sorted(active) == ids
    assert store.open_assignments(ds.id, "b") == [] or result.unplaced
    # Samples nobody named could take (a and c already had them, d gets the rest).
    assert result.to["d"] >= 1
    [event] = store.audit_events(action="reassign")
    assert event.actor == "boss" and event.target == "b"
    assert event.detail["moved"] == result.moved


def test_reassign_leaves_a_sample_when_everyone_named_has_it(store):
    [sample] = _dataset(store, 1)
    assign.assign_dataset(store, "d", ["a", "b"], 2)
    result = assign.reassign(store, "d", "a", ["b"])
    assert (result.moved, result.unplaced) == (0, 1)
    assert sorted(_active(store, store.dataset("d").id)[sample]) == ["a", "b"]


def test_reassign_errors(store):
    _dataset(store, 2)
    assign.assign_dataset(store, "d", ["a", "b"], 1)
    with pytest.raises(NotFoundError, match="'zed' has no assignment"):
        assign.reassign(store, "d", "zed", ["a"])
    with pytest.raises(ReflectionError, match="someone other than 'a'"):
        assign.reassign(store, "d", "a", ["a"])


def test_progress_per_reviewer(store):
    _dataset(store, 4)
    assign.assign_dataset(store, "d", ["a", "b"], 2)
    ds = store.dataset("d")
    first, second = store.sample_ids(ds.id)[:2]
    store.add_review(Review(sample_id=first, decision="accept", annotator="a"))
    store.add_review(Review(sample_id=second, decision="skip", annotator="a"))
    rows = {row["reviewer"]: row for row in assign.progress(store, "d")}
    assert rows["a"] == {
        "reviewer": "a", "assigned": 4, "decided": 1, "skipped": 1, "open": 3, "done": 0.25,
    }  # fmt: skip
    assert rows["b"]["decided"] == 0 and rows["b"]["open"] == 4


# --- blind queues -------------------------------------------------------------------------------


@pytest.fixture
def team(store):
    """Six samples; a and b each have samples 1-4 (overlap 2), c has 5-6 alone."""
    ids = _dataset(store, 6)
    ds = store.dataset("d")
    pairs = [(s, r) for s in ids[:4] for r in ("a", "b")] + [(s, "c") for s in ids[4:]]
    store.add_assignments(ds.id, pairs)
    return store, ds.id, ids


def test_a_reviewers_queue_holds_only_their_assignments(team):
    store, dataset_id, ids = team
    session = ReviewSession.open(
        store, dataset_id, QueueQuery(statuses=("undecided",), reviewer="c")
    )
    assert session.ids == ids[4:]
    session.decide(store, "accept", annotator="c")
    assert session.current_id == ids[5]
    # a's queue is not touched by b deciding: statuses are a's own.
    a = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",), reviewer="a"))
    b = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",), reviewer="b"))
    b.decide(store, "reject", annotator="b")
    assert a.current_id == ids[0]
    assert store.queue_ids(dataset_id, QueueQuery(statuses=("undecided",), reviewer="a")) == ids[:4]
    assert store.queue_ids(dataset_id, QueueQuery(statuses=("rejected",), reviewer="b")) == ids[:1]
    with pytest.raises(NotFoundError, match="not assigned to a"):
        a.jump(store, ids[5])


def test_review_is_blind_until_adjudication(team):
    store, dataset_id, ids = team
    sid = ids[0]
    edit = store.add_candidate(
        Candidate(sample_id=sid, kind="edit", output="b's text", annotator="b")
    )
    store.add_review(Review(sample_id=sid, decision="edit", candidate_id=edit, annotator="b"))
    item = load_item(store, sid, reviewer="a")
    assert item.state.status == "undecided"
    assert item.history == []
    assert all(c.annotator != "b" for c in item.candidates)
    shared = load_item(store, sid)
    assert shared.state.status == "edited" and len(shared.history) == 1


def test_a_withdrawn_assignment_cannot_be_decided(team):
    store, dataset_id, ids = team
    session = ReviewSession.open(store, dataset_id, QueueQuery(reviewer="a"))
    store.move_assignments(dataset_id, [(ids[0], "a", "c")])
    with pytest.raises(ReflectionError, match="no longer assigned to a"):
        session.decide(store, "accept", annotator="a")
    assert store.reviews_for(ids[0]) == []


def test_undo_takes_back_the_reviewers_own_decision(team):
    store, dataset_id, ids = team
    sid = ids[0]
    a = ReviewSession.open(store, dataset_id, QueueQuery(reviewer="a"))
    a.decide(store, "accept", annotator="a")
    store.add_review(Review(sample_id=sid, decision="accept", annotator="b"))
    assert a.undo_last(store, "a") == f"Undid the decision on sample {sid}."
    assert store.reviewer_state(sid, "a").status == "undecided"
    assert store.reviewer_state(sid, "b").status == "accepted"


# --- how an assigned sample's state settles -----------------------------------------------------


def test_agreement_settles_disagreement_waits_for_adjudication(team):
    store, dataset_id, ids = team
    agreed, disputed = ids[0], ids[1]
    for reviewer in ("a", "b"):
        store.add_review(Review(sample_id=agreed, decision="reject", annotator=reviewer))
    store.add_review(Review(sample_id=disputed, decision="reject", annotator="a"))
    assert store.state(disputed).status == "rejected"  # one vote so far
    store.add_review(Review(sample_id=disputed, decision="accept", annotator="b"))
    assert store.state(agreed).status == "rejected"
    assert store.state(disputed).status == "undecided"
    assert store.disputed_sample_ids(dataset_id) == [disputed]
    adjudicate(store, disputed, "boss", "accept")
    assert store.state(disputed).status == "accepted"
    assert store.state(disputed).annotator == "boss"
    assert store.disputed_sample_ids(dataset_id) == []
    assert store.disputed_sample_ids(dataset_id, adjudicated=True) == [disputed]
    undo_adjudication(store, disputed, "boss")
    assert store.state(disputed).status == "undecided"
    assert [e.action for e in store.audit_events()] == ["adjudicate", "adjudicate"]
    # The cached states are what a replay of the log gives.
    before = store.query("SELECT * FROM reviewer_state ORDER BY sample_id, kind, reviewer")
    states = store.query("SELECT * FROM sample_state ORDER BY sample_id")
    store.rebuild_states()
    assert store.query("SELECT * FROM reviewer_state ORDER BY sample_id, kind, reviewer") == before
    assert store.query("SELECT * FROM sample_state ORDER BY sample_id") == states


def test_two_edits_agree_when_their_text_is_the_same(team):
    store, dataset_id, ids = team
    sid = ids[0]
    for reviewer in ("a", "b"):
        edit = store.add_candidate(
            Candidate(sample_id=sid, kind="edit", output="same", annotator=reviewer)
        )
        store.add_review(
            Review(sample_id=sid, decision="edit", candidate_id=edit, annotator=reviewer)
        )
    assert store.state(sid).status == "edited"
    assert store.disputed_sample_ids(dataset_id) == []
    other = store.add_candidate(Candidate(sample_id=sid, kind="edit", output="new", annotator="a"))
    store.add_review(Review(sample_id=sid, decision="edit", candidate_id=other, annotator="a"))
    assert store.disputed_sample_ids(dataset_id) == [sid]


def test_assigning_reviewed_samples_replays_them_per_reviewer(store):
    [sid] = _dataset(store, 1)
    store.add_review(Review(sample_id=sid, decision="accept", annotator="a"))
    store.add_review(Review(sample_id=sid, decision="reject", annotator="b"))
    assert store.state(sid).status == "rejected"  # unassigned: the latest decides
    assign.assign_dataset(store, "d", ["a", "b"], 2)
    assert store.state(sid).status == "undecided"  # assigned: a and b disagree


def test_unassigned_undo_still_pops_the_latest_decision(store):
    [sid] = _dataset(store, 1)
    store.add_review(Review(sample_id=sid, decision="accept", annotator="a"))
    store.add_review(Review(sample_id=sid, decision="reject", annotator="b"))
    store.undo(sid, annotator="a")
    assert store.state(sid).status == "accepted"
    assert store.reviewer_state(sid, "a").status == "accepted"
    assert store.reviewer_state(sid, "b").status == "undecided"


def test_the_migration_fills_reviewer_state_from_existing_reviews(tmp_path):
    from reflection.store import schema

    path = tmp_path / "old.db"
    with Store(path) as store:
        [sid] = _dataset(store, 1)
        store.add_review(Review(sample_id=sid, decision="accept", annotator="a"))
        store.add_review(Review(sample_id=sid, decision="reject", annotator="b"))
        store.undo(sid, annotator="b")
        store.conn.execute("DROP TABLE reviewer_state")
        store.conn.execute("DROP TABLE assignments")
        store.conn.execute("ALTER TABLE reviews DROP COLUMN kind")
        store.conn.execute("DELETE FROM _migrations WHERE name = 'm012_assignments'")
    assert "m012_assignments" in [m.__name__ for m in schema.MIGRATIONS]
    with Store(path) as store:
        assert store.reviewer_state(sid, "a").status == "accepted"
        assert store.reviewer_state(sid, "b").status == "undecided"
        assert store.reviews_for(sid)[0].kind == ""


def test_replaying_a_large_dataset_reads_its_reviewed_samples_a_chunk_at_a_time(store, monkeypatch):
    """First assignments replay every reviewed sample of the dataset, read in chunks (all at
    once, 7.1M of them took `assign` to 745 MB), and none of another dataset's."""
    from reflection.store import assignments

    monkeypatch.setattr(assignments, "REPLAY_CHUNK", 2)
    ids, others = _dataset(store, 7), _dataset(store, 3, name="other")
    for sid in [*ids[1:6], *others]:
        store.add_review(Review(sample_id=sid, decision="accept", annotator="a"))
        store.add_review(Review(sample_id=sid, decision="reject", annotator="b"))
    assign.assign_dataset(store, "d", ["a", "b"], 2)
    assert [store.state(s).status for s in ids] == ["undecided"] * 7  # a and b disagree
    assert [store.state(s).status for s in others] == ["rejected"] * 3  # not assigned
    assert store.reviewer_state(ids[5], "a").status == "accepted"
    assert store.reviewer_state(ids[5], "b").status == "rejected"
