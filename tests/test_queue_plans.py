"""The review queue finds the same samples whichever way it writes a filter: as a set built
once, or as a probe per sample in queue order (queue_filters). Which one a query gets depends
on how many rows its sets hold (DENSE); here DENSE is forced both ways on one store and every
combination of filters and orders must give the same ids, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from reflection import Candidate, Review, Sample, Score
from reflection.records import CHECKS_METRIC, DERIVED_FLAGS, JUDGE_METRIC, Suggestion
from reflection.store import queue, search
from reflection.store.queue import QueueQuery, ScoreRange
from reflection.store.queue_filters import VERSIONS, flag_members, range_member, status_members

N = 120


@pytest.fixture
def varied(store):
    """N samples with a bit of everything: candidates of each status or none, IFD, drift,
    judge and content-check scores, decisions of each kind, import flags, suggestions."""
    rng = random.Random(3)
    data = store.ensure_dataset("varied")
    store.add_samples(
        data.id,
        [
            Sample(instruction=f"Task {i}", output=f"Answer {i}", position=(i * 7) % N,
                   flags=["odd_source"] if i % 11 == 0 else [])
            for i in range(N)
        ],
    )  # fmt: skip
    ids = store.sample_ids(data.id)
    scores, suggestions, reviews = [], [], []
    for k, sid in enumerate(ids):
        scores.append(Score(sample_id=sid, metric="ifd_ppl", value=rng.uniform(0.3, 1.3)))
        if k % 9 == 0:
            continue  # no candidate
        status = rng.choice(["ok", "ok", "ok", "failed", "truncated"])
        cid = store.add_candidate(
            Candidate(sample_id=sid, kind="response", instruction=f"Task {k}",
                      output=f"Better answer {k}", status=status)
        )  # fmt: skip
        scores += [
            Score(sample_id=sid, candidate_id=cid, metric="ifd_ppl", value=rng.uniform(0.3, 1.3)),
            Score(sample_id=sid, candidate_id=cid, metric="drift", value=rng.random()),
            Score(sample_id=sid, candidate_id=cid, metric=JUDGE_METRIC,
                  value=rng.randint(1, 10)),
        ]  # fmt: skip
        if k % 5 == 0:
            scores.append(Score(sample_id=sid, candidate_id=cid, metric=CHECKS_METRIC, value=1,
                                detail={"flags": {"repetitive": "loops"}}))  # fmt: skip
        suggestions.append(Suggestion(sample_id=sid, candidate_id=cid, rule="t", reason="r",
                                      confidence=rng.random()))  # fmt: skip
        choice = rng.random()
        if choice < 0.4:
            decision = rng.choice(["accept", "reject", "skip"])
            reviews.append(Review(sid, decision, cid if decision == "accept" else None))
    store.put_scores(scores)
    store.put_suggestions(suggestions)
    store.add_reviews(reviews)
    return store, data.id


QUERIES = [
    QueueQuery(statuses=statuses, flags=flags, ranges=ranges)
    for statuses, flags, ranges in itertools.product(
        [(), ("undecided",), ("accepted", "skipped"), ("undecided", "rejected")],
        [(), ("drift",), ("misaligned", "no_candidate"), ("parse_failed", "repetitive"),
         ("truncated", "judge_low", "odd_source")],
        [(), (ScoreRange("ifd_ppl", 0.8, None),), (ScoreRange("ifd_ppl", None, 0.0, "change"),),
         (ScoreRange("drift", 0.2, 0.7, "candidate"),)],
    )
]  # fmt: skip


@pytest.mark.both_backends
@pytest.mark.parametrize("sort", ["position", "id", "confidence", "change"])
def test_sets_and_probes_find_the_same_samples(varied, monkeypatch, sort):
    store, dataset_id = varied
    found = {}
    for dense in (0, 10**9):  # every set probed; every set built
        monkeypatch.setattr(queue, "DENSE", dense)
        found[dense] = [
            store.queue_ids(
                dataset_id,
                QueueQuery(**{**q.__dict__, "sort": sort,
                              "sort_metric": "ifd_ppl" if sort == "change" else ""}),
            )
            for q in QUERIES
        ]  # fmt: skip
    assert found[0] == found[10**9]
    sizes = [len(ids) for ids in found[0]]
    assert sizes[0] == N and min(sizes) < N // 4 and len(set(sizes)) > 10  # they do select


@pytest.mark.both_backends
def test_a_probed_queue_pages_in_windows_like_a_built_one(varied, monkeypatch):
    store, dataset_id = varied
    query = QueueQuery(statuses=("undecided",), flags=("drift", "misaligned"))
    pages = {}
    for dense in (0, 10**9):
        monkeypatch.setattr(queue, "DENSE", dense)
        seen: list[int] = []
        while batch := store.queue_ids(dataset_id, query, limit=7, exclude=seen):
            seen += batch
        pages[dense] = seen
        assert len(seen) == store.queue_count(dataset_id, query)
    assert pages[0] == pages[10**9]
    assert len(pages[0]) > 14  # more than two windows


def test_every_probe_looks_its_sample_up_by_id(varied):
    """A probe must find its rows by sample id: through an index led by metric or status it
    reads every such row for each sample (at 1,000,000 samples: 55 s for one window)."""
    store, dataset_id = varied
    members = [
        *flag_members(tuple(f for f in DERIVED_FLAGS)),
        *status_members(("accepted", "undecided"), dataset_id, None, {}),
        *status_members(("accepted", "undecided"), dataset_id, "ana", {}),
        *(range_member(ScoreRange("ifd_ppl", 0.5, None, version)) for version in VERSIONS),
    ]
    for member in members:
        sql, params = member.as_probe()
        plan = " | ".join(
            row[-1]
            for row in store.conn.execute(
                f"EXPLAIN QUERY PLAN SELECT s.id FROM samples s WHERE {sql}", params
            )
        )
        lookup = re.search(r"SEARCH t USING (?:\w+ )*(?:INDEX \w+ )?\((sample_id|rowid)=\?", plan)
        assert lookup, f"{member.table} probe: {plan}"


@pytest.mark.both_backends
@pytest.mark.parametrize("sort", ["change", "candidate", "confidence"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dense", [0, 10**9])  # filters walked along, or leading the query
def test_walking_a_score_index_gives_the_ranked_order(varied, monkeypatch, sort, descending, dense):
    """An order by a candidate's score is read from the score's index (first time a sample
    appears) instead of ranking every sample: the same ids as the ranking query, page by page,
    samples without a value last, with and without filters."""
    store, dataset_id = varied
    monkeypatch.setattr(queue, "DENSE", dense)
    metric = {"change": "ifd_ppl", "candidate": "drift", "confidence": ""}[sort]
    for filters in (
        {},
        {"statuses": ("undecided",)},
        {"flags": ("misaligned", "no_candidate")},
        {"ranges": (ScoreRange("ifd_ppl", 0.5, None),)},
    ):
        q = QueueQuery(sort=sort, sort_metric=metric, descending=descending, **filters)
        sql, params = store._queue_sql(dataset_id, q)
        ranked = [row[0] for row in store.conn.execute(sql, params)]
        assert store.queue_ids(dataset_id, q) == ranked
        paged: list[int] = []
        while batch := store.queue_ids(dataset_id, q, limit=9, exclude=paged):
            paged += batch
        assert paged == ranked
        assert len(ranked) > 9


@pytest.mark.both_backends
@pytest.mark.parametrize("dense", [0, 10**9])  # other filters probed too, or sets
@pytest.mark.parametrize("text", ["answer", "better", "task 1", "better 3", "nothing"])
def test_a_search_probed_in_queue_order_finds_what_its_set_finds(varied, monkeypatch, text, dense):
    """A search first probes the first SEARCH_WALK samples of the queue for the words and
    builds the search's set only when that does not fill the window: page by page, with or
    without other filters, the ids must be those of the set, however short the walk."""
    store, dataset_id = varied
    probed = []
    probe = queue.QueueStore._probed_search

    def spy(*args, **kwargs):
        found = probe(*args, **kwargs)
        probed.append(found is not None)
        return found

    monkeypatch.setattr(queue.QueueStore, "_probed_search", spy)
    for filters in ({}, {"statuses": ("undecided",)}, {"flags": ("drift",)}):
        q = QueueQuery(text=text, **filters)
        monkeypatch.setattr(queue, "DENSE", 10**9)
        sql, params = store._queue_sql(dataset_id, q)
        matched = [row[0] for row in store.conn.execute(sql, params)]  # every set, whole
        monkeypatch.setattr(queue, "DENSE", dense)
        for walk in (5, 40, 10**6):
            monkeypatch.setattr(queue, "SEARCH_WALK", walk)
            paged: list[int] = []
            while batch := store.queue_ids(dataset_id, q, limit=7, exclude=paged):
                # a full window unless the queue ends: a short one reads as the end
                assert batch == matched[len(paged) : len(paged) + 7], (filters, walk)
                paged += batch
            assert paged == matched, (filters, walk)
    if text != "nothing":
        assert any(probed) and not all(probed)  # both ways were taken


def test_a_probed_search_finds_late_candidates_and_leaves_unindexed_rows_to_its_set(
    varied, monkeypatch
):
    """SQLite asks each full-text index for the rowid range the walk spans: a candidate
    written long after its sample (an id past every other) must still be found, and rows
    not indexed yet (a publish before its index catches up) send the search to its set,
    which reads them directly."""
    store, dataset_id = varied
    taken = []
    probe = search.probed_search

    def spy(*args, **kwargs):
        found = probe(*args, **kwargs)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(queue, "probed_search", spy)
    first, second, third = store.queue_ids(dataset_id, QueueQuery(), limit=3)
    store.add_candidate(Candidate(sample_id=third, kind="response", output="zebra crossing"))
    store.add_candidate(Candidate(sample_id=second, kind="response", output="zebra"))
    store.add_candidate(Candidate(sample_id=second, kind="response", output="a zebra"))
    assert store.queue_ids(dataset_id, QueueQuery(text="zebra"), limit=2) == [second, third]
    assert taken == [True]
    with store.staged_candidates() as staged:  # published, not indexed yet
        staged.add([(Candidate(sample_id=first, kind="response", output="zebra"), None, ":z")])
        with store.transaction(), store.run("import-candidates", dataset_id, {}) as run:
            assert run.id is not None
            staged.publish(dataset_id, run.id, "response")
    assert store.search_backlog("candidates") == 1
    assert store.queue_ids(dataset_id, QueueQuery(text="zebra"), limit=2) == [first, second]
    assert taken == [True, False]
    store.index_search_backlog()
    assert store.queue_ids(dataset_id, QueueQuery(text="zebra"), limit=2) == [first, second]
    assert taken == [True, False, True]


@pytest.mark.parametrize("text", ["café", "cafe", "CAF", "w", "w1", "w1 lait", "zz", "lait w"])
def test_prefixes_spelt_out_as_words_find_what_the_prefix_finds(store, monkeypatch, text):
    """SQLite spells a prefix out as the words of the index that begin with it, where the
    token is ASCII and begins at most EXPAND_AT_MOST words (else the prefix itself is asked):
    the windows must be the set's either way, diacritics and case folded as the index folds
    them."""
    monkeypatch.setattr(search, "EXPAND_AT_MOST", 8)
    data = store.ensure_dataset("words")
    texts = ["Café au lait", "cafe", "caféine", "CAFES", *(f"w{i} lait" for i in range(30))]
    store.add_samples(data.id, [Sample(t, "", f"answer {n}") for n, t in enumerate(texts * 4)])
    for sid in store.sample_ids(data.id)[::3]:
        store.add_candidate(Candidate(sample_id=sid, kind="response", output="w1 café w7"))
    q = QueueQuery(text=text)
    sql, params = store._queue_sql(data.id, q)
    matched = [row[0] for row in store.conn.execute(sql, params)]
    paged: list[int] = []
    while batch := store.queue_ids(data.id, q, limit=3, exclude=paged):
        assert batch == matched[len(paged) : len(paged) + 3]
        paged += batch
    assert paged == matched
