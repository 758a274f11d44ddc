"""The full-text backlog after deletes (migration m026, SQLite): new rows take the ids of
deleted ones (SQLite gives a new row the largest id plus one), and must be searchable all
the same, and the index must stay whole: FTS5's own integrity check, and a search that
finds each row by its own words and no row by words that were deleted."""

from __future__ import annotations

from reflection.records import Candidate, Sample
from reflection.store import Store
from reflection.store.queue import QueueQuery


def _intact(store: Store) -> None:
    for table in ("samples", "candidates"):
        store.conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('integrity-check')")


def _found(store: Store, dataset_id: int, word: str) -> list[int]:
    return store.queue_ids(dataset_id, QueueQuery(text=word))


def test_rows_that_take_a_deleted_rows_id_are_searchable(tmp_path):
    with Store(tmp_path / "ids.db") as store:
        data = store.ensure_dataset("d")
        store.add_samples(data.id, [Sample(f"question {i}", "", "answer") for i in range(6)])
        ids = store.sample_ids(data.id)
        cids = store.add_candidates(
            Candidate(sample_id=sid, kind="response", output=f"reply{n}")
            for n, sid in enumerate(ids)
        )
        # The newest candidates go (as a retry replaces the error rows of a failed run) ...
        with store.transaction():
            store.conn.execute("DELETE FROM candidates WHERE id >= ?", [cids[3]])
        # ... and new ones take their ids: one written alone, two published in bulk.
        [alone] = store.add_candidates(
            [Candidate(sample_id=ids[3], kind="response", output="walrus")]
        )
        with store.staged_candidates() as staged:
            staged.add(
                [(Candidate(sample_id=ids[n], kind="response", output="narwhal"), None, f":{n}")
                 for n in (4, 5)]
            )  # fmt: skip
            with store.transaction(), store.run("import-candidates", data.id, {}) as run:
                assert run.id is not None
                staged.publish(data.id, run.id, "response")
        store.index_search_backlog()
        assert alone == cids[3]  # the id did come back
        assert _found(store, data.id, "walrus") == [ids[3]]
        assert _found(store, data.id, "narwhal") == [ids[4], ids[5]]
        assert _found(store, data.id, "reply4") == []  # deleted words are gone
        assert _found(store, data.id, "reply1") == [ids[1]]
        _intact(store)
        # The same for samples: the newest sample goes, a new one takes its id.
        with store.transaction():
            store.conn.execute("DELETE FROM candidates WHERE sample_id = ?", [ids[5]])
            store.conn.execute("DELETE FROM samples WHERE id = ?", [ids[5]])
        store.add_samples(data.id, [Sample("a platypus", "", "answer")])
        new = store.sample_ids(data.id)[-1]
        assert new == ids[5]  # the id did come back
        assert _found(store, data.id, "platypus") == [new]
        _intact(store)
        # And a delete of the new rows takes out only what they put in.
        with store.transaction():
            store.conn.execute("DELETE FROM candidates WHERE output = 'walrus'")
            store.conn.execute("DELETE FROM samples WHERE id = ?", [new])
        assert _found(store, data.id, "walrus") == []
        assert _found(store, data.id, "platypus") == []
        _intact(store)
