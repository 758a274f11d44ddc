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
from reflection.store import Store, queue, search, search_terms
from reflection.store.queue import QueueQuery, ScoreRange
from reflection.store.queue_filters import VERSIONS, flag_members, range_member, status_members

N = 120


def _given(found):
    return found is not None


def _recorded(monkeypatch, owner, name, wrapped, keep=lambda found: found) -> list:
    """Replace `owner.name` by `wrapped`, recording `keep` of what each call returns."""
    seen: list = []

    def spy(*args, **kwargs):
        found = wrapped(*args, **kwargs)
        seen.append(keep(found))
        return found

    monkeypatch.setattr(owner, name, spy)
    return seen


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
    probed = _recorded(
        monkeypatch, queue.QueueStore, "_probed_search", queue.QueueStore._probed_search, _given
    )
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
    taken = _recorded(monkeypatch, queue, "probed_search", search.probed_search, _given)
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
    monkeypatch.setattr(search_terms, "EXPAND_AT_MOST", 8)
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


def _source_ordered(store, n: int = 90):
    """n samples imported in source order (ids follow positions), a third about bees in
    their own text, some others only in a candidate, one of those written last of all; a
    few decided."""
    data = store.ensure_dataset("ordered")
    store.add_samples(
        data.id,
        [
            Sample(f"{'Bees and honey' if i % 3 == 0 else 'Task'} {i}", "", f"a{i}", position=i)
            for i in range(n)
        ],
    )
    ids = store.sample_ids(data.id)
    for k, sid in enumerate(ids):
        if k % 3 == 1 and k % 2 == 0:
            store.add_candidate(Candidate(sample_id=sid, kind="response", output="bees here"))
        elif k % 4 == 0:
            store.add_candidate(Candidate(sample_id=sid, kind="response", output="other"))
    store.add_reviews(Review(sid, "accept") for sid in ids[::5])
    return data.id, ids


def _windows(store, dataset_id, q, limit=7):
    paged: list[int] = []
    while batch := store.queue_ids(dataset_id, q, limit=limit, exclude=paged):
        paged += batch
    return paged


@pytest.mark.parametrize("placed", [-1, None], ids=["placed-first", "no-position"])
@pytest.mark.parametrize("span", [10**6, 12])
def test_a_bounded_search_finds_what_its_set_finds_and_refuses_when_ids_are_out_of_order(
    store, monkeypatch, span, placed
):
    """SQLite searches a word the walk does not fill a window with among the samples from
    the dataset's first id up to a bound (`search.bounded_search`): in source order it must
    give the set's windows, with filters, candidate-only matches and a candidate written
    after every other; a sample whose position puts it before ids it comes after must send
    the search to its set. A small BOUNDED_SPAN makes it widen its bound, then give up."""
    monkeypatch.setattr(queue, "SEARCH_WALK", 4)  # the walk never fills a window here
    monkeypatch.setattr(search, "BOUNDED_SPAN", span)
    dataset_id, ids = _source_ordered(store)
    # Written after every other candidate, for a sample nothing else of which matches, and
    # decided, so that the accepted queue (too few matches at first) widens its bound.
    store.add_candidate(Candidate(sample_id=ids[2], kind="reroll", output="late bees"))
    store.add_review(Review(ids[2], "accept"))
    results = _recorded(monkeypatch, queue, "bounded_search", search.bounded_search, _given)
    for filters in ({}, {"statuses": ("undecided",)}, {"statuses": ("accepted",)}):
        q = QueueQuery(text="bees", **filters)
        sql, params = store._queue_sql(dataset_id, q)
        matched = [row[0] for row in store.conn.execute(sql, params)]
        assert ids[2] in matched or filters == {"statuses": ("undecided",)}
        assert _windows(store, dataset_id, q) == matched, filters
    assert any(results) if span > 12 else not any(results)
    # A sample imported later but placed first in source order: the bound would miss it.
    # (Samples without a position come first.)
    store.add_samples(dataset_id, [Sample("no match", "", "x")])
    [late] = [sid for sid in store.sample_ids(dataset_id) if sid not in ids]
    with store.transaction():  # as a file that numbers its records itself may place it
        store.conn.execute("UPDATE samples SET position = ? WHERE id = ?", [placed, late])
        if placed is None:  # and the first one too: the search starts from it
            store.conn.execute("UPDATE samples SET position = NULL WHERE id = ?", [ids[0]])
    store.add_candidate(Candidate(sample_id=late, kind="response", output="bees"))
    results.clear()
    q = QueueQuery(text="bees")
    sql, params = store._queue_sql(dataset_id, q)
    matched = [row[0] for row in store.conn.execute(sql, params)]
    assert late in matched[:2]
    assert _windows(store, dataset_id, q) == matched
    assert results[0] is False  # the first window's bounded try was refused


@pytest.mark.both_backends
def test_a_search_with_few_matches_leads_the_query(store, monkeypatch):
    """A search whose set is small leads (its few ids, then the order) rather than the
    dataset being read in source order to the end: the same windows, with filters."""
    monkeypatch.setattr(queue, "SEARCH_WALK", 4)
    dataset_id, ids = _source_ordered(store)
    store.add_candidate(Candidate(sample_id=ids[40], kind="response", output="zebra"))
    store.add_candidate(Candidate(sample_id=ids[7], kind="response", output="zebras"))
    store.add_samples(dataset_id, [Sample("A zebra", "", "z")])
    with store.transaction():  # a late sample placed first
        store.conn.execute("UPDATE samples SET position = -1 WHERE id = ?", [max(ids) + 1])
    small = _recorded(monkeypatch, queue, "search_set_is_small", search.search_set_is_small)
    for filters in ({}, {"statuses": ("undecided",)}, {"flags": ("no_candidate",)}):
        q = QueueQuery(text="zebra", **filters)
        sql, params = store._queue_sql(dataset_id, q)
        matched = [row[0] for row in store.conn.execute(sql, params)]
        assert _windows(store, dataset_id, q, limit=2) == matched, filters
    if store.dialect == "postgresql":  # its planner leads with a small set by itself
        assert small == []
        return
    assert small and all(small)
    monkeypatch.setattr(queue, "DENSE", 2)  # "bees" (30 samples) is then not small
    small.clear()
    q = QueueQuery(text="bees")
    sql, params = store._queue_sql(dataset_id, q)
    assert _windows(store, dataset_id, q) == [row[0] for row in store.conn.execute(sql, params)]
    assert small and not any(small)


def test_the_candidate_reach_widens_as_the_whole_range_would(store):
    """The span of candidate ids of the samples from the first up to a growing bound, read a
    piece at a time, must be the span of the whole range at every bound."""
    rng = random.Random(8)
    data = store.ensure_dataset("reach")
    store.add_samples(data.id, [Sample(f"q{i}", "", "a", position=i) for i in range(40)])
    ids = store.sample_ids(data.id)
    for _ in range(60):  # candidates written in no particular order of their samples
        store.add_candidate(Candidate(sample_id=rng.choice(ids[3:]), kind="response", output="x"))
    reach = search._CandidateReach(store.conn, ids[0])
    for high in (ids[0], ids[2], ids[5], ids[6], ids[20], ids[39]):
        whole = store.conn.execute(
            "SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM candidates"
            " WHERE sample_id BETWEEN ? AND ?",
            [ids[0], high],
        ).fetchone()
        assert reach.upto(high) == tuple(whole), high


def test_the_words_a_prefix_begins_are_read_again_once_the_index_changes(tmp_path):
    """A prefix's words are remembered per database file while its index's structure record
    is unchanged: a row written one at a time, a publish indexed afterwards and a delete must
    each show in the next expansion; an unchanged index answers from memory."""
    with Store(tmp_path / "words.db") as store:
        data = store.ensure_dataset("d")
        store.add_samples(data.id, [Sample("explain this", "", "a")])
        store.index_search_backlog()
        first = search_terms.expanded(store.conn, "samples", "expl")
        assert first == '("explain")'
        words = search_terms._words(store.conn, "samples", "expl")
        assert search_terms._words(store.conn, "samples", "expl") is words  # remembered
        store.add_samples(data.id, [Sample("an explosion", "", "b")])
        assert search_terms.expanded(store.conn, "samples", "expl") == (
            '("explain" OR "explosion")'
        )
        [old, new] = store.sample_ids(data.id)
        store.add_candidate(Candidate(sample_id=old, kind="response", output="explicit"))
        assert search_terms.expanded(store.conn, "candidates", "expl") == '("explicit")'
        with store.transaction():  # a write the index holds in memory until the commit
            store.add_candidate(Candidate(sample_id=old, kind="response", output="expletive"))
            assert search_terms.expanded(store.conn, "candidates", "expl") == (
                '("expletive" OR "explicit")'
            )
        with store.staged_candidates() as staged:  # published, indexed afterwards
            staged.add([(Candidate(sample_id=new, kind="response", output="explore"), None, ":e")])
            with store.transaction(), store.run("import-candidates", data.id, {}) as run:
                assert run.id is not None
                staged.publish(data.id, run.id, "response")
        assert search_terms.expanded(store.conn, "candidates", "expl") == (
            '("expletive" OR "explicit")'
        )
        store.index_search_backlog()
        assert search_terms.expanded(store.conn, "candidates", "expl") == (
            '("expletive" OR "explicit" OR "explore")'
        )
        with store.transaction():
            store.conn.execute("DELETE FROM candidates WHERE sample_id = ?", [new])
            store.conn.execute("DELETE FROM samples WHERE id = ?", [new])
        assert search_terms.expanded(store.conn, "samples", "expl") == first
        assert search_terms.expanded(store.conn, "candidates", "expl") == (
            '("expletive" OR "explicit")'
        )
    with Store(":memory:") as memory:  # no file to tell it by: read every time
        memory.add_samples(memory.ensure_dataset("m").id, [Sample("explain", "", "a")])
        memory.index_search_backlog()
        words = search_terms._words(memory.conn, "samples", "expl")
        assert search_terms._words(memory.conn, "samples", "expl") is not words


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_skips_the_walk_for_a_word_its_planner_expects_to_be_rare(varied, monkeypatch):
    """With statistics, PostgreSQL's planner tells a word in every row from one in none:
    the walk is skipped for the rare one only, and the windows stay the set's."""
    store, dataset_id = varied
    store.add_candidate(
        Candidate(sample_id=store.sample_ids(dataset_id)[50], kind="response", output="zebra")
    )
    store.conn.execute("ANALYZE")
    monkeypatch.setattr(queue, "SEARCH_WALK", 40)
    seen = _recorded(monkeypatch, search, "_sparse", search._sparse)
    for text, expected in (("zebra", True), ("answer", False)):
        seen.clear()
        q = QueueQuery(text=text)
        sql, params = store._queue_sql(dataset_id, q)
        matched = [row[0] for row in store.conn.execute(sql, params)]
        assert _windows(store, dataset_id, q) == matched
        assert seen and all(found is expected for found in seen), text
