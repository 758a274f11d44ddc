"""Dashboard frames: every count recomputed in Python from how the fixture was built."""

from __future__ import annotations

import pytest
from appdata import (
    build,
    decide,
    drift,
    instruction_ifd,
    original_ifd,
    reflection_failed,
    response_ifd,
)

from reflection.records import Candidate, Review, Sample
from reflection.review import dashboard, figures
from reflection.store.queue import QueueQuery

N = 30


@pytest.fixture
def built(store):
    return build(store, N)


def ok_indices():
    return [i for i in range(N) if not reflection_failed(i)]


def test_histograms_count_every_scored_version(store, built):
    frame, metrics = dashboard.histograms(store, built["dataset"].id, ["ifd_ppl", "words_output"])
    assert metrics == ["drift", "ifd_ppl", "words_output"]
    ifd = frame[frame.metric == "ifd_ppl"]
    counts = ifd.groupby("version")["n"].sum().to_dict()
    assert counts == {
        "original": N,
        "instruction": len(ok_indices()),
        "response": len(ok_indices()),
    }
    # The bins hold the values: recompute the original's histogram by hand.
    values = [original_ifd(i) for i in range(N)] + [
        f(i) for i in ok_indices() for f in (instruction_ifd, response_ifd)
    ]
    lo, hi = min(values), max(values)
    width = (hi - lo) / dashboard.BINS
    expected: dict[int, int] = {}
    for i in range(N):
        b = min(max(int((original_ifd(i) - lo) / width), 0), dashboard.BINS - 1)
        expected[b] = expected.get(b, 0) + 1
    original = ifd[ifd.version == "original"]
    assert dict(zip(original["bin"], original["n"], strict=True)) == expected
    assert original["share"].sum() == pytest.approx(1.0)
    assert set(frame.metric) == {"ifd_ppl", "words_output"}


def test_histograms_default_metrics_prefer_ifd(store, built):
    frame, _ = dashboard.histograms(store, built["dataset"].id)
    assert set(frame.metric) == {"ifd_ppl", "words_output", "drift"}


def test_shift_pairs_each_candidate_with_its_original(store, built):
    frame, points = dashboard.shift(store, built["dataset"].id)
    by_kind = frame.groupby("kind")[["n", "lower"]].sum().to_dict("index")
    lower_response = sum(response_ifd(i) < original_ifd(i) for i in ok_indices())
    assert by_kind == {
        "instruction": {"n": len(ok_indices()), "lower": len(ok_indices())},
        "response": {"n": len(ok_indices()), "lower": lower_response},
    }
    assert len(points) == 2 * len(ok_indices())
    row = points[points.sample_id == built["ids"][1]].set_index("kind")
    assert row.loc["response", "original"] == pytest.approx(original_ifd(1))
    assert row.loc["response", "candidate"] == pytest.approx(response_ifd(1))


def test_thinning_counts_only_every_kth_sample(store, built, monkeypatch):
    monkeypatch.setattr(dashboard, "HISTOGRAM_SAMPLES", 10)
    every = -(-N // 10)
    frame, _ = dashboard.histograms(store, built["dataset"].id, ["ifd_ppl"])
    # Every k-th sample by position: the first, the k+1-th, ...
    kept = [i for i in range(len(built["ids"])) if i % every == 0]
    assert set(frame["every"]) == {every}
    assert frame[frame.version == "original"]["n"].sum() == len(kept)
    shift, _ = dashboard.shift(store, built["dataset"].id)
    assert shift["n"].sum() == 2 * len([i for i in kept if not reflection_failed(i)])


def test_decisions_progress_annotators_and_acceptance(store, built):
    decide(
        store, built, {0: ("accept", "response"), 1: ("accept", None), 2: ("reject", None)}, "ana"
    )
    decide(store, built, {4: ("accept", "instruction"), 5: ("skip", None)}, "<b>bob</b>")
    data = dashboard.dashboard_data(store, built["dataset"].id)
    assert data.status["accepted"] == 3 and data.status["rejected"] == 1
    assert data.progress["n"].sum() == 4  # skips are not progress
    assert data.progress["decided"].max() == 4
    annot = {(r.annotator, r.status): r.n for r in data.annotators.itertuples()}
    assert annot == {
        ("ana", "accepted"): 2,
        ("ana", "rejected"): 1,
        ("<b>bob</b>", "accepted"): 1,
        ("<b>bob</b>", "skipped"): 1,
    }
    acceptance = data.acceptance.set_index("kind")
    # Decided (not skipped) samples: 0, 1, 2, 4 — all have both kinds of candidates.
    assert acceptance.loc["original"].tolist()[:2] == [4, 1]
    assert acceptance.loc["response"].tolist()[:2] == [4, 1]
    assert acceptance.loc["instruction", "rate"] == pytest.approx(0.25)


def test_acceptance_counts_a_sample_once_per_kind(store):
    """Two candidates of one kind offer that kind once; a sample without one of a kind is
    not offered it (each backend writes this query its own way)."""
    data = store.ensure_dataset("acceptance")
    store.add_samples(data.id, [Sample(instruction=f"q{i}", output="a") for i in range(4)])
    ids = store.sample_ids(data.id)
    store.add_candidate(Candidate(sample_id=ids[0], kind="response", output="x"))
    second = store.add_candidate(Candidate(sample_id=ids[0], kind="response", output="y"))
    store.add_candidate(Candidate(sample_id=ids[1], kind="response", output="z"))
    store.add_candidate(
        Candidate(sample_id=ids[1], kind="instruction", instruction="i", output="o")
    )
    store.add_candidate(
        Candidate(sample_id=ids[3], kind="instruction", instruction="j", output="p")
    )
    store.add_reviews([Review(ids[0], "accept", second), Review(ids[1], "reject"),
                       Review(ids[2], "accept"), Review(ids[3], "skip")])  # fmt: skip
    found = {r["kind"]: (r["offered"], r["accepted"]) for r in store.acceptance_by_kind(data.id)}
    assert found == {"original": (3, 1), "response": (2, 1), "instruction": (1, 0)}


def test_flags_agree_with_the_review_queue(store, built):
    dataset_id = built["dataset"].id
    frame = dashboard.flags(store, dataset_id).set_index("flag")
    misaligned = sum(
        original_ifd(i) >= 1
        or (not reflection_failed(i) and max(instruction_ifd(i), response_ifd(i)) >= 1)
        for i in range(N)
    )
    assert frame.loc["misaligned", "n"] == misaligned
    assert frame.loc["parse_failed", "n"] == N - len(ok_indices())
    drifted = sum(not reflection_failed(i) and drift(i) < 0.5 for i in range(N))
    assert drifted and frame.loc["drift", "n"] == drifted
    for flag in ("misaligned", "drift", "parse_failed", "truncated", "no_candidate"):
        assert frame.loc[flag, "n"] == store.queue_count(dataset_id, QueueQuery(flags=(flag,)))


def test_every_frame_is_filtered_by_dataset(store):
    # Interleave two datasets so the first one's ids are not contiguous.
    first = build(store, 12, name="first", hostile=False)
    other = build(store, 12, name="other", hostile=False)
    store.add_samples(first["dataset"].id, [Sample(instruction="late", output="x", position=99)])
    decide(store, other, {0: ("reject", None)}, "ana")
    data = dashboard.dashboard_data(store, first["dataset"].id)
    assert data.progress.empty and data.annotators.empty
    ifd = data.histograms[data.histograms.metric == "ifd_ppl"]
    assert ifd[ifd.version == "original"]["n"].sum() == 12
    assert data.flags.set_index("flag").loc["no_candidate", "n"] == 1
    assert data.shift["n"].sum() == 2 * sum(not reflection_failed(i) for i in range(12))


def test_empty_dataset_renders(store):
    dataset = store.ensure_dataset("empty")
    data = dashboard.dashboard_data(store, dataset.id)
    drawn = figures.figures(data)
    assert len(drawn) >= 5
    assert data.histograms.empty and data.shift.empty


def test_figures_escape_untrusted_names(store, built):
    decide(store, built, {0: ("accept", None)}, "<img src=x onerror=alert(1)>")
    data = dashboard.dashboard_data(store, built["dataset"].id)
    drawn = figures.figures(data)
    text = "".join(f.to_json() for f in drawn)
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert len(drawn) == 9  # progress, annotators, 3 histograms, 2 shift, acceptance, flags


def test_metric_ranges(store, built):
    ranges = {(r["metric"], r["scorer"]): r for r in store.metric_ranges(built["dataset"].id)}
    ifd = ranges[("ifd_ppl", "test-student")]
    values = [original_ifd(i) for i in range(N)] + [
        f(i) for i in ok_indices() for f in (instruction_ifd, response_ifd)
    ]
    assert ifd["n"] == len(values)
    assert (ifd["lo"], ifd["hi"]) == (pytest.approx(min(values)), pytest.approx(max(values)))


def test_version_changes_with_every_write(store, built):
    before = store.version()
    decide(store, built, {3: ("accept", None)}, "ana")
    after = store.version()
    assert after["reviews"] > before["reviews"] and after["scores"] == before["scores"]


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
