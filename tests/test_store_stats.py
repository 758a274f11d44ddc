"""`Store.stats` of the whole store counts without joining every row to its sample (at 10M
samples that join read a sample at random for each of 80M scores: 530 s); the counts must
still be the sum of every dataset's own. And the walking commands' ids come 8 bytes each."""

from __future__ import annotations

from array import array

import pytest

from reflection import Candidate, Review, Sample, Score, Suggestion

pytestmark = pytest.mark.both_backends


def _fill(store, name: str, n: int, seed: int) -> int:
    ds = store.ensure_dataset(name)
    store.add_samples(
        ds.id,
        [
            Sample(
                instruction=f"{name} question {i}",
                output="" if i % 4 == 0 else f"answer {i}",
                position=n - i,
            )
            for i in range(n)
        ],  # fmt: skip
    )
    ids = store.sample_ids(ds.id)
    candidates = [
        Candidate(sample_id=sid, kind=("instruction", "response")[k % 2], instruction="q",
                  output=f"better {k}", status="failed" if (k + seed) % 5 == 0 else "ok")
        for k, sid in enumerate(ids)
    ]  # fmt: skip
    store.add_candidates(candidates)
    store.put_scores(
        [Score(sample_id=sid, metric="ifd_ppl", value=0.5 + k / n, scorer="s") for k, sid in enumerate(ids)]
        + [Score(sample_id=c.sample_id, candidate_id=c.id, metric="judge", value=7, scorer="j")
           for c in candidates[:: seed + 1]]
    )  # fmt: skip
    store.put_suggestions(
        Suggestion(sample_id=sid, candidate_id=candidates[k].id if k % 2 else None, rule="r", reason="",
                   decision="accept" if k % 3 else "reject")
        for k, sid in enumerate(ids)
    )  # fmt: skip
    store.add_reviews(
        Review(sample_id=sid, decision=("accept", "reject")[k % 2], annotator="ann")
        for k, sid in enumerate(ids[: n // 2])
    )  # fmt: skip
    return ds.id


def _added(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


def test_the_whole_store_counts_what_its_datasets_count(store):
    first, second = _fill(store, "a", 12, seed=1), _fill(store, "b", 7, seed=2)
    whole, one, other = store.stats(), store.stats(first), store.stats(second)
    for key in ("samples", "candidates", "suggestions"):
        assert whole[key] == one[key] + other[key] > 0, key
    for key in ("flagged_samples", "candidates_by_kind", "candidates_by_status",
                "scores_by_metric", "reviews_by_decision", "suggestions_by_decision"):  # fmt: skip
        assert whole[key] == _added(one[key], other[key]), key
        assert one[key] and other[key], key
    assert whole["flagged_samples"] == {"empty_output": 3 + 2}
    assert whole["scores_by_metric"] == {"ifd_ppl": 19, "judge": 6 + 3}
    assert whole["scorers"] == {"ifd_ppl": ["s"], "judge": ["j"]}
    assert one["scorers"] == other["scorers"] == whole["scorers"]


def test_sample_id_array_is_sample_ids_in_eight_bytes_each(store):
    data = _fill(store, "a", 9, seed=1)
    _fill(store, "b", 3, seed=2)
    ids = store.sample_ids(data)
    assert ids == sorted(ids, reverse=True)  # source order: positions ran backwards
    got = store.sample_id_array(data)
    assert isinstance(got, array) and got.itemsize == 8 and got.tolist() == ids
    assert store.sample_id_array(data, 4).tolist() == ids[:4]
    assert len(store.sample_id_array(data, 0)) == len(store.sample_id_array(data, -1)) == 0


def test_sample_id_array_bounded_and_undecided(store):
    """A job's selection: ids up to a bound (samples added later stay out), only the samples
    without a decision in force, the first n of them, in source order, on both backends."""
    data = _fill(store, "a", 9, seed=1)
    ids = store.sample_ids(data)
    bound = store.newest_sample_id()
    assert bound == max(ids)
    store.add_review(Review(sample_id=ids[5], decision="reject"))
    store.add_review(Review(sample_id=ids[5], decision="undo"))  # in force again: undecided
    _fill(store, "b", 2, seed=2)
    store.add_samples(data, [Sample(instruction="later", output="x", position=100)])
    assert store.newest_sample_id() > bound
    status = store.statuses_of(ids)
    undecided = [i for i in ids if status[i] == "undecided"]
    assert ids[5] in undecided and ids[2] not in undecided and 0 < len(undecided) < len(ids)
    assert store.sample_id_array(data, upto=bound, undecided=True).tolist() == undecided
    assert store.sample_id_array(data, 3, upto=bound, undecided=True).tolist() == undecided[:3]
    assert store.sample_id_array(data, upto=bound).tolist() == ids
    assert store.sample_id_array(data, undecided=True).tolist() == [
        *undecided, store.newest_sample_id()
    ]  # fmt: skip
