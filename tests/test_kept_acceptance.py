"""The Dashboard's acceptance per version kind, kept as the store writes (migration m025), on
SQLite and PostgreSQL: through decisions and changes of mind, undo, edits, candidates added
to decided samples one at a time and in bulk, candidates deleted or moved, a state rebuild
and an upgrade of a store made before the counts. Each step is checked against a count made
in Python from the rows themselves."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from test_tallies import forget_kept_acceptance

from reflection.records import Candidate, Review, Sample
from reflection.review import dashboard
from reflection.store import Store, bulk_counts

pytestmark = pytest.mark.both_backends

KINDS = ("instruction", "response", "both", "reroll")
DECIDED = ("accepted", "edited", "rejected")


def _counted(store: Store, dataset_id: int) -> list[dict[str, int | str]]:
    """Acceptance per kind, the slow way: every decided sample and its candidates."""
    kinds: dict[int, dict[int, str]] = defaultdict(dict)
    for cid, sid, kind in store.conn.execute("SELECT id, sample_id, kind FROM candidates"):
        kinds[sid][cid] = kind
    offered: dict[str, int] = defaultdict(int)
    accepted: dict[str, int] = defaultdict(int)
    decided = 0
    for sid, state in store.states(dataset_id).items():
        if state.status not in DECIDED:
            continue
        decided += 1
        for kind in set(kinds[sid].values()):
            offered[kind] += 1
        if state.candidate_id is None:
            accepted["original"] += state.status == "accepted"
        elif state.candidate_id in kinds[sid]:
            accepted[kinds[sid][state.candidate_id]] += 1
    rows: list[dict[str, int | str]] = [
        {"kind": "original", "offered": decided, "accepted": accepted["original"]}
    ]
    rows += [
        {"kind": kind, "offered": offered[kind], "accepted": accepted[kind]}
        for kind in sorted(offered)
    ]
    return rows


def _check(store: Store, *datasets: int) -> None:
    for dataset_id in datasets:
        assert store.acceptance_by_kind(dataset_id) == _counted(store, dataset_id)
    assert store.tally_check() == []


def _publish(store: Store, dataset_id: int, sample_ids: list[int], kind: str, tag: str) -> None:
    rows = [
        (Candidate(sample_id=sid, kind=kind, output=f"{tag} {n}"), None, f":{tag}:{n}")
        for n, sid in enumerate(sample_ids)
    ]
    with store.staged_candidates() as staged:
        staged.add(rows)
        with store.transaction(), store.run("import-candidates", dataset_id, {}) as run:
            assert run.id is not None
            staged.publish(dataset_id, run.id, kind)


def _decide(store: Store, rng: random.Random, ids: list[int]) -> None:
    """A random decision on each of `ids`: accept the original or one of its candidates,
    edit, reject, skip or undo."""
    for sid in ids:
        cids = [
            cid
            for (cid,) in store.conn.execute(
                "SELECT id FROM candidates WHERE sample_id = ? AND kind != 'edit'", [sid]
            )
        ]
        choice = rng.choice(["accept", "accept", "candidate", "edit", "reject", "skip", "undo"])
        if choice == "candidate" and cids:
            store.add_review(Review(sid, "accept", rng.choice(cids)))
        elif choice == "edit":
            edit = store.add_candidate(Candidate(sample_id=sid, kind="edit", output="edited"))
            store.add_review(Review(sid, "edit", edit))
        elif choice == "undo":
            store.undo(sid)
        else:
            store.add_review(Review(sid, "reject" if choice == "candidate" else choice))


def test_acceptance_follows_every_write(store):
    rng = random.Random(25)
    data, other = store.ensure_dataset("data"), store.ensure_dataset("other")
    store.add_samples(data.id, [Sample(f"q{i}", "", f"a{i}") for i in range(60)])
    store.add_samples(other.id, [Sample(f"o{i}", "", f"b{i}") for i in range(10)])
    ids, others = store.sample_ids(data.id), store.sample_ids(other.id)
    # Candidates before any decision, one at a time: 0-2 of a sample's, random kinds.
    for sid in ids[:45] + others:
        for _ in range(rng.randrange(3)):
            store.add_candidate(Candidate(sample_id=sid, kind=rng.choice(KINDS), output="c"))
    _decide(store, rng, ids + others)
    _check(store, data.id, other.id)
    counts = {row["kind"]: row for row in store.acceptance_by_kind(data.id)}
    # Enough of each part happened that a missed one shows.
    assert counts["original"]["accepted"] > 0 and counts["edit"]["accepted"] > 0
    assert sum(row["accepted"] for k, row in counts.items() if k in KINDS) > 0

    for _ in range(2):  # changes of mind and undo on the same samples
        _decide(store, rng, rng.sample(ids, 30))
        _check(store, data.id, other.id)

    # New candidates for decided samples, one at a time: a kind new to the sample counts it
    # offered, a second of a kind it had does not.
    for sid in rng.sample(ids, 20):
        store.add_candidate(Candidate(sample_id=sid, kind=rng.choice(KINDS), output="late"))
    _check(store, data.id, other.id)

    # Deleted candidates, the version in force among them; a candidate moved to another kind
    # and to another sample.
    in_force = [
        cid
        for (cid,) in store.conn.execute(
            "SELECT candidate_id FROM sample_state WHERE candidate_id != 0 AND dataset_id = ?",
            [data.id],
        )
    ]
    assert len(in_force) >= 4
    with store.transaction():
        store.conn.execute("DELETE FROM candidates WHERE id IN (?, ?)", in_force[:2])
        store.conn.execute("UPDATE candidates SET kind = 'compress' WHERE id = ?", [in_force[2]])
        store.conn.execute(
            "UPDATE candidates SET sample_id = ? WHERE id = ?", [ids[-1], in_force[3]]
        )
    _check(store, data.id, other.id)

    store.rebuild_states()  # deletes every state row and replays the log
    _check(store, data.id, other.id)

    # The Dashboard reads the kept counts.
    frame = dashboard.acceptance(store, data.id).set_index("kind")
    for row in _counted(store, data.id):
        assert frame.loc[row["kind"], "offered"] == row["offered"]
        assert frame.loc[row["kind"], "accepted"] == row["accepted"]


@pytest.mark.parametrize("decided", [5, 40], ids=["few-decided", "most-decided"])
def test_a_bulk_import_of_candidates_counts_as_the_row_triggers_would(store, decided):
    """Candidates published in bulk for samples some of which are decided (SQLite counts them
    at once, walking whichever of the decided samples and the new rows is smaller), some
    already having the kind, one taking a new candidate as its version later."""
    rng = random.Random(decided)
    data = store.ensure_dataset("data")
    store.add_samples(data.id, [Sample(f"q{i}", "", f"a{i}") for i in range(40)])
    ids = store.sample_ids(data.id)
    for sid in ids[::3]:
        store.add_candidate(Candidate(sample_id=sid, kind="response", output="old"))
    _decide(store, rng, ids[:decided])
    _check(store, data.id)
    # Two candidates of the kind for some samples, one for others, none for the rest.
    _publish(store, data.id, ids[:30] + ids[:10], "response", "bulk")
    _check(store, data.id)
    _publish(store, data.id, ids[5:25], "reroll", "second")
    _check(store, data.id)
    # The row trigger counts again after a bulk publish.
    store.add_candidate(Candidate(sample_id=ids[0], kind="both", output="one"))
    _check(store, data.id)


def test_walking_either_way_gives_the_same_bulk_count(store, monkeypatch):
    """Both join orders of the SQLite bulk count, forced: the same counts."""
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL counts a statement's rows in its statement trigger")
    found = []
    original = bulk_counts.bulk_count_sql
    for from_states in (True, False):
        monkeypatch.setattr(bulk_counts, "bulk_count_sql", lambda _, f=from_states: original(f))
        data = store.ensure_dataset(f"data{from_states}")
        store.add_samples(data.id, [Sample(f"q{i}", "", f"a{i}") for i in range(30)])
        ids = store.sample_ids(data.id)
        for sid in ids[:10]:
            store.add_candidate(Candidate(sample_id=sid, kind="response", output="old"))
        _decide(store, random.Random(3), ids[:20])
        _publish(store, data.id, ids + ids[:5], "response", f"bulk{from_states}")
        _check(store, data.id)
        found.append([{**row} for row in store.acceptance_by_kind(data.id)])
    assert found[0] == found[1]


def test_a_store_from_before_the_counts_gets_them_on_upgrade(store_target):
    with Store(store_target) as old:
        data = old.ensure_dataset("d")
        old.add_samples(data.id, [Sample(f"q{i}", "", f"a{i}") for i in range(12)])
        ids = old.sample_ids(data.id)
        with old.transaction():
            forget_kept_acceptance(old)
        taken = old.add_candidate(Candidate(sample_id=ids[0], kind="response", output="r"))
        old.add_candidate(Candidate(sample_id=ids[1], kind="instruction", output="i"))
        old.add_reviews([Review(ids[0], "accept", taken), Review(ids[1], "reject"),
                         Review(ids[2], "accept")])  # fmt: skip
        assert old.acceptance_by_kind(data.id)[1:] == []  # nothing kept yet
    with Store(store_target) as upgraded:  # opening migrates: m025 counts what is there
        assert upgraded.acceptance_by_kind(data.id) == [
            {"kind": "original", "offered": 3, "accepted": 1},
            {"kind": "instruction", "offered": 1, "accepted": 0},
            {"kind": "response", "offered": 1, "accepted": 1},
        ]
        assert upgraded.tally_check() == []
        upgraded.add_review(Review(ids[0], "reject"))  # and its triggers count from then on
        _check(upgraded, data.id)
