"""The review queue: filters, orders, search, navigation, decisions and undo on a real store."""

from __future__ import annotations

import pytest

from reflection import Candidate, NotFoundError, ReflectionError, Review, Sample, Score, Store
from reflection.records import Suggestion
from reflection.review.overview import dataset_overview
from reflection.review.queue import (
    QueueQuery,
    ReviewSession,
    ScoreRange,
    candidate_label,
    default_candidate,
    flag_names,
    item_flags,
    load_item,
    parse_tags,
    score_rows,
    sort_query,
    suggested_decision,
)
from reflection.store.queue import fts_query

pytestmark = pytest.mark.both_backends

# position: (instruction, output, original ifd, candidate ifd, drift (similarity), candidate
# status, flags)
ROWS = [
    ("Name three fruits.", "Apple, pear, plum.", 0.50, 0.40, 0.90, "ok", []),
    ("Describe the ocean.", "It is wet.", 1.20, 0.70, 0.30, "ok", []),
    ("Translate bonjour.", "Hello.", 0.90, 0.95, 0.80, "failed", []),
    ("Write a café review.", "Nice coffee.", 0.30, 0.60, 0.95, "truncated", ["odd_source"]),
    ("Sum 2 and 2.", "4", 1.00, None, None, None, []),
    ("Explain gravity.", "Things fall down.", None, None, None, "ok", []),
]


@pytest.fixture
def queue_store(tmp_path):
    """Six samples (ids 1..6 in position order) with candidates, scores, one suggestion."""
    with Store(tmp_path / "queue.db") as store:
        ds = store.ensure_dataset("q")
        other = store.ensure_dataset("other")
        store.add_samples(
            ds.id,
            [
                Sample(instruction=i, output=o, position=p, flags=f)
                for p, (i, o, _, _, _, _, f) in enumerate(ROWS)
            ],
        )
        store.add_samples(other.id, [Sample(instruction="elsewhere", output="x")])
        ids = store.sample_ids(ds.id)
        for sid, (_, output, ifd, cifd, drift, status, _) in zip(ids, ROWS, strict=True):
            scores = [] if ifd is None else [Score(sample_id=sid, metric="ifd_ppl", value=ifd)]
            if status is not None:
                cid = store.add_candidate(
                    Candidate(
                        sample_id=sid,
                        kind="response",
                        output=output + " Improved zebra.",
                        status=status,
                    )
                )
                if cifd is not None:
                    scores.append(
                        Score(sample_id=sid, candidate_id=cid, metric="ifd_ppl", value=cifd)
                    )
                    scores.append(
                        Score(sample_id=sid, candidate_id=cid, metric="drift", value=drift)
                    )
            store.put_scores(scores)
        store.put_suggestions(
            [
                Suggestion(
                    sample_id=ids[1], candidate_id=2, rule="ifd", reason="IFD drops", confidence=0.9
                ),
                Suggestion(
                    sample_id=ids[0], candidate_id=None, rule="ifd", reason="keep", confidence=0.4
                ),
            ]
        )
        store.add_review(Review(sample_id=ids[0], decision="accept", annotator="ann"))
        store.add_review(Review(sample_id=ids[2], decision="reject", annotator="bob"))
        store.add_review(Review(sample_id=ids[3], decision="skip", annotator="bob"))
        yield store, ds.id, ids
        # fmt: skip


@pytest.mark.parametrize(
    ("query", "positions"),
    [
        (QueueQuery(), [0, 1, 2, 3, 4, 5]),
        (QueueQuery(descending=True), [5, 4, 3, 2, 1, 0]),
        (QueueQuery(statuses=("undecided",)), [1, 4, 5]),
        (QueueQuery(statuses=("accepted", "rejected")), [0, 2]),
        (QueueQuery(statuses=("undecided", "skipped")), [1, 3, 4, 5]),
        (QueueQuery(flags=("misaligned",)), [1, 4]),
        (QueueQuery(flags=("drift",)), [1]),
        (QueueQuery(flags=("parse_failed",)), [2]),
        (QueueQuery(flags=("truncated",)), [3]),
        (QueueQuery(flags=("no_candidate",)), [4]),
        (QueueQuery(flags=("odd_source",)), [3]),
        (QueueQuery(flags=("drift", "odd_source")), [1, 3]),
        (QueueQuery(ranges=(ScoreRange("ifd_ppl", 0.5, 1.0),)), [0, 2, 4]),
        (QueueQuery(ranges=(ScoreRange("ifd_ppl", None, 0.5),)), [0, 3]),
        (QueueQuery(ranges=(ScoreRange("ifd_ppl", 0.9, None, "candidate"),)), [2]),
        (QueueQuery(ranges=(ScoreRange("ifd_ppl", None, -0.05, "change"),)), [0, 1]),
        (QueueQuery(ranges=(ScoreRange("ifd_ppl", 0.2, None, "change"),)), [3]),
        (QueueQuery(ranges=(ScoreRange("drift", version="candidate"),)), [0, 1, 2, 3]),
        (QueueQuery(ranges=(ScoreRange("drift"),)), []),  # originals have no drift
        (QueueQuery(text="ocean"), [1]),
        (QueueQuery(text="OCEAN wet"), [1]),
        (QueueQuery(text="ocean fruits"), []),
        (QueueQuery(text="zebra"), [0, 1, 2, 3, 5]),  # only in candidates
        (QueueQuery(text="cafe"), [3]),  # diacritics ignored
        (QueueQuery(text="grav"), [5]),  # prefixes match
        (QueueQuery(text='" OR ( NEAR *'), []),  # FTS5 syntax stays inert
        (QueueQuery(statuses=("undecided",), text="zebra"), [1, 5]),
        (QueueQuery(sort="confidence", descending=True), [1, 0, 2, 3, 4, 5]),
        (QueueQuery(sort="original", sort_metric="ifd_ppl", descending=True), [1, 4, 2, 0, 3, 5]),
        (QueueQuery(sort="original", sort_metric="ifd_ppl"), [3, 0, 2, 4, 1, 5]),
        (QueueQuery(sort="change", sort_metric="ifd_ppl"), [1, 0, 2, 3, 4, 5]),
        (QueueQuery(sort="candidate", sort_metric="drift"), [1, 2, 0, 3, 4, 5]),
        (QueueQuery(sort="id", descending=True), [5, 4, 3, 2, 1, 0]),
    ],
)  # fmt: skip
def test_queue_ids(queue_store, query, positions):
    store, dataset_id, ids = queue_store
    assert store.queue_ids(dataset_id, query) == [ids[p] for p in positions]
    assert store.queue_count(dataset_id, query) == len(positions)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (QueueQuery(statuses=("maybe",)), "unknown status 'maybe'"),
        (QueueQuery(sort="random"), "unknown sort 'random'"),
        (QueueQuery(sort="original"), "needs a metric"),
        (QueueQuery(ranges=(ScoreRange("ifd_ppl", version="best"),)), "unknown version 'best'"),
    ],
)
def test_queue_rejects_bad_queries(queue_store, query, message):
    store, dataset_id, _ = queue_store
    with pytest.raises(ReflectionError, match=message):
        store.queue_ids(dataset_id, query)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("cat", '"cat"*'),
        ("cat dog", '"cat"* "dog"*'),
        ('say "hi"', '"say"* "hi"*'),
        ('"', ""),
        ("NEAR(a b)", '"NEAR"* "a"* "b"*'),
        ("don't my_var", '"don"* "t"* "my"* "var"*'),
        ("café 42", '"café"* "42"*'),
    ],
)
def test_fts_query(text, expected):
    assert fts_query(text) == expected


@pytest.mark.parametrize(
    ("text", "tags"),
    [("", []), ("a, b", ["a", "b"]), (" a ,, a,b ", ["a", "b"]), ("x y", ["x y"])],
)
def test_parse_tags(text, tags):
    assert parse_tags(text) == tags


def test_search_sees_new_samples_and_candidates(queue_store):
    store, dataset_id, ids = queue_store
    assert store.queue_ids(dataset_id, QueueQuery(text="xylophone")) == []
    store.add_samples(dataset_id, [Sample(instruction="Play the xylophone.", output="Ding.")])
    store.add_candidate(Candidate(sample_id=ids[4], kind="reroll", output="A xylophone answer."))
    new_id = max(store.sample_ids(dataset_id))
    assert sorted(store.queue_ids(dataset_id, QueueQuery(text="xylophone"))) == [ids[4], new_id]


def test_sort_query_labels_and_unknown():
    assert sort_query("Drift (least similar first)") == QueueQuery(
        sort="candidate", sort_metric="drift", descending=False
    )
    with pytest.raises(ReflectionError, match="unknown order"):
        sort_query("Random")


def test_flag_names_and_metric_names(queue_store):
    store, dataset_id, _ = queue_store
    assert flag_names(store, dataset_id) == [
        "misaligned",
        "drift",
        "parse_failed",
        "truncated",
        "no_candidate",
        "empty",
        "meta_talk",
        "repetitive",
        "length",
        "off_topic",
        "judge_low",
        "odd_source",
    ]
    assert store.metric_names() == ["drift", "ifd_ppl"]


def test_load_item_scores_flags_and_default(queue_store):
    store, _, ids = queue_store
    item = load_item(store, ids[1])
    shown = default_candidate(item)
    assert shown.id == 2 and item.suggestion.candidate_id == 2
    assert score_rows(item, shown) == [
        {"metric": "ifd_ppl", "original": 1.2, "candidate": 0.7, "change": pytest.approx(-0.5)},
        {"metric": "drift", "original": None, "candidate": 0.3, "change": None},
    ]
    assert score_rows(item, None) == [
        {"metric": "ifd_ppl", "original": 1.2, "candidate": None, "change": None}
    ]
    assert item_flags(item) == [
        "misaligned: IFD 1.20 ≥ 1 (original)",
        "drift: similarity 0.30 < 0.5 (#2)",
    ]
    assert item_flags(load_item(store, ids[3])) == ["odd_source (import)", "truncated (#4)"]
    assert item_flags(load_item(store, ids[4])) == [
        "misaligned: IFD 1.00 ≥ 1 (original)",
        "no candidate",
    ]
    assert candidate_label(shown) == "#2 response (ok)" and candidate_label(None) == "original"


def test_default_candidate_prefers_the_version_in_force(queue_store):
    store, _, ids = queue_store
    extra = store.add_candidate(Candidate(sample_id=ids[1], kind="reroll", output="Again."))
    assert default_candidate(load_item(store, ids[1])).id == 2  # the suggested one
    store.add_review(Review(sample_id=ids[1], decision="accept", candidate_id=extra))
    assert default_candidate(load_item(store, ids[1])).id == extra
    assert default_candidate(load_item(store, ids[4])) is None


def test_session_walks_undecided_and_skips_samples_decided_meanwhile(queue_store):
    store, dataset_id, ids = queue_store
    session = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",)))
    assert session.ids == [ids[1], ids[4], ids[5]] and session.current_id == ids[1]
    # Someone else decides the next sample while we look at this one.
    store.add_review(Review(sample_id=ids[4], decision="reject", annotator="other"))
    review = session.decide(store, "accept", annotator="me", candidate_id=2, note="n", tags=["t"])
    assert session.current_id == ids[5]
    saved = store.reviews_for(ids[1])[-1]
    assert (saved.id, saved.annotator, saved.note, saved.tags) == (review.id, "me", "n", ["t"])
    assert store.state(ids[1]).status == "accepted"
    assert session.previous() == ids[4]  # previous shows it whatever its status
    session.next(store)
    session.decide(store, "skip", annotator="me")
    assert session.done and session.current_id is None
    with pytest.raises(ReflectionError, match="queue is finished"):
        session.decide(store, "accept", annotator="me")


def test_session_undo_restores_and_shows_the_sample(queue_store):
    store, dataset_id, ids = queue_store
    session = ReviewSession.open(store, dataset_id, QueueQuery())
    session.index = 1
    session.decide(store, "reject", annotator="me")
    session.decide(store, "accept", annotator="me")  # ids[2] was rejected by bob: now accepted
    assert session.current_id == ids[3]
    assert session.undo_last(store, "me") == f"Undid the decision on sample {ids[2]}."
    assert session.current_id == ids[2]
    assert store.state(ids[2]).status == "rejected"  # bob's decision is back in force
    assert session.undo_last(store, "me") == f"Undid the decision on sample {ids[1]}."
    assert store.state(ids[1]).status == "undecided"
    assert session.undo_last(store, "me") == "Nothing to undo in this session."
    assert [r.decision for r in store.reviews_for(ids[1])] == ["reject", "undo"]


def test_session_undo_leaves_a_later_decision_by_someone_else(queue_store):
    store, dataset_id, ids = queue_store
    session = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",)))
    session.decide(store, "reject", annotator="me")
    store.add_review(Review(sample_id=ids[1], decision="accept", annotator="other"))
    message = session.undo_last(store, "me")
    assert message == f"Sample {ids[1]} was decided again since (by other); nothing undone."
    assert store.state(ids[1]).status == "accepted"


def test_session_edit_saves_a_candidate_and_accepts_it(queue_store):
    store, dataset_id, ids = queue_store
    session = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",)))
    base = store.candidate(2)
    text = {
        "instruction": "Describe the ocean in detail.",
        "input": "",
        "output": "Vast and salty.",
    }
    review = session.save_edit(store, base, text, annotator="me", note="fixed", tags=["edit"])
    edit = store.candidate(review.candidate_id)
    assert (edit.kind, edit.parent_id, edit.annotator, edit.output) == (
        "edit",
        2,
        "me",
        "Vast and salty.",
    )
    state = store.state(ids[1])
    assert (state.status, state.candidate_id) == ("edited", edit.id)
    assert session.current_id == ids[4]
    with pytest.raises(ReflectionError, match="needs an instruction and an output"):
        session.save_edit(store, None, {"instruction": "x", "output": " "}, annotator="me")
    assert store.queue_ids(dataset_id, QueueQuery(text="salty")) == [ids[1]]


def test_session_jump_reload_and_errors(queue_store):
    store, dataset_id, ids = queue_store
    session = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",)))
    session.jump(store, ids[0])  # outside the filter: shown next anyway
    assert session.current_id == ids[0] and ids[0] in session.ids
    session.jump(store, ids[5])
    assert session.current_id == ids[5]
    with pytest.raises(NotFoundError, match="no sample 99"):
        session.jump(store, 99)
    other_sample = store.sample_ids(store.dataset("other").id)[0]
    with pytest.raises(NotFoundError):
        session.jump(store, other_sample)
    session.reload(store, QueueQuery(text="gravity"))
    assert session.ids == [ids[5]] and session.current_id == ids[5]
    session.reload(store, QueueQuery(text="ocean"))
    assert session.current_id == ids[1] and session.index == 0


def test_statuses_of(queue_store):
    store, _, ids = queue_store
    assert store.statuses_of(ids[:4]) == {
        ids[0]: "accepted",
        ids[1]: "undecided",
        ids[2]: "rejected",
        ids[3]: "skipped",
    }


def test_dataset_overview_next_steps(tmp_path, queue_store):
    store, dataset_id, ids = queue_store
    overview = dataset_overview(store, dataset_id)
    assert {k: overview[k] for k in ("samples", "candidates", "scored", "decided")} == {
        "samples": 6,
        "candidates": 5,
        "scored": 13,  # 5 original IFDs, 4 candidate IFDs, 4 drifts
        "decided": 2,
    }
    assert overview["progress"] == pytest.approx(2 / 6)
    assert overview["next_step"]["step"] == "review"
    assert overview["next_step"]["text"].startswith("3 samples wait")
    with Store(tmp_path / "empty.db") as empty:
        ds = empty.ensure_dataset("e")
        empty.add_samples(ds.id, [Sample(instruction="a", output="b")])
        assert dataset_overview(empty, ds.id)["next_step"]["label"] == "Run a reflection"
        empty.add_candidate(Candidate(sample_id=1, kind="response", output="c"))
        assert dataset_overview(empty, ds.id)["next_step"]["label"] == "Run scoring"
        empty.put_scores([Score(sample_id=1, metric="judge", value=3)])
        empty.add_review(Review(sample_id=1, decision="accept"))
        assert dataset_overview(empty, ds.id)["next_step"]["step"] == "export"


def test_session_loads_the_queue_a_window_at_a_time(queue_store, monkeypatch):
    store, dataset_id, ids = queue_store
    monkeypatch.setattr("reflection.review.queue.WINDOW", 2)
    session = ReviewSession.open(store, dataset_id, QueueQuery())
    assert (session.ids, session.size_label, session.done) == (ids[:2], "2+", False)
    seen = [session.current_id]
    while session.next(store) is not None:
        seen.append(session.current_id)
    assert seen == ids and session.done and session.size_label == "6"
    # With a status filter: decisions made meanwhile (here or elsewhere) never skip a sample.
    session = ReviewSession.open(store, dataset_id, QueueQuery(statuses=("undecided",)))
    assert session.ids == [ids[1], ids[4]] and session.more
    session.decide(store, "accept", annotator="me", candidate_id=2)
    assert session.current_id == ids[4]
    session.decide(store, "reject", annotator="me")
    assert session.current_id == ids[5] and session.ids == [ids[1], ids[4], ids[5]]
    session.decide(store, "skip", annotator="me")
    assert session.done and session.current_id is None


def test_queue_ids_limit_and_exclude(queue_store):
    store, dataset_id, ids = queue_store
    assert store.queue_ids(dataset_id, limit=3) == ids[:3]
    assert store.queue_ids(dataset_id, limit=3, exclude=ids[:2]) == ids[2:5]
    order = QueueQuery(sort="original", sort_metric="ifd_ppl", descending=True)
    assert store.queue_ids(dataset_id, order, limit=2, exclude=[ids[1]]) == [ids[4], ids[2]]


def test_suggested_decision(queue_store):
    store, _, ids = queue_store
    assert suggested_decision(load_item(store, ids[1])) == ("accept", 2)
    assert suggested_decision(load_item(store, ids[0])) == ("accept", None)
    assert suggested_decision(load_item(store, ids[2])) is None
    store.put_suggestions(
        [Suggestion(sample_id=ids[2], candidate_id=None, rule="r", reason="x", decision="reject")]
    )
    assert suggested_decision(load_item(store, ids[2])) == ("reject", None)


def test_spotcheck_is_a_queue_of_its_own_in_its_drawn_order(queue_store):
    from reflection.review.spotcheck import create_spotcheck, spotcheck_queue

    store, dataset_id, _ = queue_store
    spot = create_spotcheck(store, "q", "check", size=4, seed=3)
    drawn = spotcheck_queue(store, "check", "q")
    assert len(drawn) == 4
    assert store.queue_ids(dataset_id, QueueQuery(spotcheck=spot.id)) == drawn
    # Filters still apply inside it, and other orders sort its samples.
    store.add_review(Review(sample_id=drawn[0], decision="reject"))
    undecided = store.queue_ids(dataset_id, QueueQuery(spotcheck=spot.id, statuses=("undecided",)))
    statuses = store.statuses_of(drawn)
    assert undecided == [i for i in drawn if statuses[i] == "undecided"]
    assert drawn[0] not in undecided
    by_id = store.queue_ids(dataset_id, QueueQuery(spotcheck=spot.id, sort="id"))
    assert by_id == sorted(drawn)
    session = ReviewSession.open(store, dataset_id, QueueQuery(spotcheck=spot.id))
    assert session.current_id == drawn[0]


def test_a_store_indexed_with_positions_is_searchable_after_the_upgrade(tmp_path):
    """m021 rebuilds the full-text indexes without positions: what was indexed before (and
    what was still waiting in the backlog) is found after, and nothing is left waiting."""
    path = tmp_path / "old.db"
    with Store(path) as store:
        ds = store.ensure_dataset("d")
        store.add_samples(ds.id, [Sample(instruction="Tune the xylophone.", output="Ding.")])
        [first] = store.sample_ids(ds.id)
        with store.transaction():  # back to m014's tables: positions kept, one row waiting
            for table in ("samples", "candidates"):
                store.conn.execute(f"DROP TABLE {table}_fts")
                store.conn.execute(
                    f"CREATE VIRTUAL TABLE {table}_fts USING fts5(instruction, input, output,"
                    f" content='{table}', content_rowid='id',"
                    " tokenize='unicode61 remove_diacritics 2')"
                )
                store.conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')")
            store.conn.execute(
                "DELETE FROM _migrations WHERE name = 'm021_search_without_positions'"
            )
        store.add_candidate(Candidate(sample_id=first, kind="reroll", output="A marimba, rather."))
        with store.transaction():
            store.conn.execute("UPDATE search_backlog SET indexed_upto = 0 WHERE name = 'samples'")
    with Store(path) as store:
        detail = store.scalar("SELECT sql FROM sqlite_master WHERE name = 'samples_fts'")
        assert "detail=none" in detail
        assert store.search_backlog("samples") == store.search_backlog("candidates") == 0
        for word in ("xylophone", "xylo", "marimba", "DING"):
            assert store.queue_ids(ds.id, QueueQuery(text=word)) == [first], word
        assert store.queue_ids(ds.id, QueueQuery(text="xylophone ding")) == [first]
        assert store.queue_ids(ds.id, QueueQuery(text="xylophone piano")) == []


def test_search_follows_text_edits_and_deletions(store):
    """The words a search finds follow a row's text when it changes or goes (SQLite's FTS
    triggers; PostgreSQL's kept vectors, m024)."""
    dataset_id = store.ensure_dataset("edits").id
    store.add_samples(dataset_id, [Sample(instruction=f"Task {i}", output="Ok.") for i in range(4)])
    ids = store.sample_ids(dataset_id)
    cid = store.add_candidate(Candidate(sample_id=ids[2], kind="reroll", output="A marimba."))
    assert store.queue_ids(dataset_id, QueueQuery(text="marimba")) == [ids[2]]
    with store.transaction():
        store.conn.execute("UPDATE candidates SET output = 'A vibraphone.' WHERE id = ?", [cid])
        store.conn.execute("UPDATE samples SET output = 'Celesta.' WHERE id = ?", [ids[3]])
    assert store.queue_ids(dataset_id, QueueQuery(text="marimba")) == []
    assert store.queue_ids(dataset_id, QueueQuery(text="vibraphone")) == [ids[2]]
    assert store.queue_ids(dataset_id, QueueQuery(text="celesta")) == [ids[3]]
    with store.transaction():
        store.conn.execute("DELETE FROM candidates WHERE id = ?", [cid])
    assert store.queue_ids(dataset_id, QueueQuery(text="vibraphone")) == []
