"""A bulk publish counts its rows at once (SQLite drops the row count triggers for its one
INSERT): the store's counts must come out exactly as the row triggers would have left them,
whatever the samples held before, and the triggers must be back, unchanged, afterwards."""

from __future__ import annotations

import pytest

from reflection.records import Candidate, Sample
from reflection.store import Store, bulk_counts

# (sample index, status) of candidates written one at a time (the row triggers count them),
# then of those published in bulk. Samples 0-2 had failed or truncated candidates before; 3
# had only a good one; 4-6 had none. Several new rows of one sample raise the same flag.
BEFORE = [(0, "failed"), (0, "ok"), (1, "truncated"), (2, "partial"), (3, "ok")]
BULK = [
    (0, "error"),  # parse_failed already raised by an old row: no change
    (1, "ok"),
    (1, "truncated"),  # truncated already raised: no change
    (2, "truncated"),  # truncated: new for this sample
    (3, "failed"),  # parse_failed: new
    (3, "partial"),  # the same flag again on the same sample: counted once
    (4, "failed"),
    (4, "error"),
    (5, "ok"),  # with_candidates: new
    (5, "ok"),
]


def _triggers(store: Store) -> list[tuple[str, str]]:
    return store.conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    ).fetchall()


def _publish(store: Store, dataset_id: int, ids: list[int], rows, tag: str) -> int:
    staged_rows = [
        (Candidate(sample_id=ids[i], kind="response", output=f"{tag} {n}", status=status),
         None, f":{tag}:{n}")
        for n, (i, status) in enumerate(rows)
    ]  # fmt: skip
    with store.staged_candidates() as staged:
        staged.add(staged_rows)
        with store.transaction(), store.run("import-candidates", dataset_id, {}) as run:
            assert run.id is not None
            return int(staged.publish(dataset_id, run.id, "response")["added"])


@pytest.mark.both_backends
@pytest.mark.parametrize("share", [16, 0], ids=["through-index", "through-rows"])
def test_a_bulk_publish_counts_as_the_row_triggers_would(store, monkeypatch, share):
    # The 10 new rows are most of the table: read through a covering index unless the share
    # says the rows are too few for that (0: never), as when a few join a large table.
    monkeypatch.setattr(bulk_counts, "INDEX_SHARE", share)
    data = store.ensure_dataset("d")
    other = store.ensure_dataset("other")  # its counts must not move
    store.add_samples(data.id, [Sample(f"q{i}", "", f"a{i}") for i in range(7)])
    store.add_samples(other.id, [Sample("elsewhere", "", "x")])
    ids = store.sample_ids(data.id)
    store.add_candidates(
        Candidate(sample_id=ids[i], kind="response", output=f"old {n}", status=status)
        for n, (i, status) in enumerate(BEFORE)
    )
    before = store.flag_counts(data.id)
    assert (before["parse_failed"], before["truncated"], before["no_candidate"]) == (2, 1, 3)
    triggers = _triggers(store) if store.dialect == "sqlite" else None
    others = store.tallies(other.id)

    assert _publish(store, data.id, ids, BULK, "bulk") == len(BULK)

    flags = store.flag_counts(data.id)
    assert (flags["parse_failed"], flags["truncated"], flags["no_candidate"]) == (4, 2, 1)
    assert store.tallies(data.id)["candidates"] == len(BEFORE) + len(BULK)
    assert store.tallies(other.id) == others
    assert store.tally_check() == []
    if triggers is not None:
        assert _triggers(store) == triggers
        # The row triggers count again: one more candidate for the last sample, one at a time.
        store.add_candidates([Candidate(sample_id=ids[6], kind="response", status="truncated")])
        assert store.flag_counts(data.id)["truncated"] == 3
        assert store.tally_check() == []


def test_a_bulk_publish_that_fails_leaves_counts_and_triggers_as_they_were(store):
    data = store.ensure_dataset("d")
    store.add_samples(data.id, [Sample(f"q{i}", "", f"a{i}") for i in range(7)])
    ids = store.sample_ids(data.id)
    triggers, counts = _triggers(store), store.tallies(data.id)
    staged_rows = [(Candidate(sample_id=ids[0], kind="response", status="failed"), None, ":x:1")]
    with pytest.raises(RuntimeError, match="later"), store.staged_candidates() as staged:
        staged.add(staged_rows)
        with store.transaction(), store.run("import-candidates", data.id, {}) as run:
            assert run.id is not None
            staged.publish(data.id, run.id, "response")
            raise RuntimeError("something later in the transaction failed")
    assert _triggers(store) == triggers
    assert store.tallies(data.id) == counts
    assert store.tally_check() == []
