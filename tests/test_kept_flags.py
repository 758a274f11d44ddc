"""The flag counts the store keeps as it writes (migration m020): for every derived flag, the
kept count equals the review queue's own filter counted the slow way, on both backends,
through first scores, rescoring across each threshold, deletes, a copy and an upgrade."""

from __future__ import annotations

import random

import pytest
from test_tallies import forget_kept_flags

from reflection.records import (
    CANDIDATE_STATUSES,
    CHECKS_METRIC,
    DERIVED_FLAGS,
    DRIFT_METRIC,
    FLAG_METRICS,
    IFD_METRIC,
    JUDGE_METRIC,
    RELEVANCE_METRIC,
    Candidate,
    Sample,
    Score,
)
from reflection.review.dashboard import flags as dashboard_flags
from reflection.store import Store
from reflection.store.copy import copy_store
from reflection.store.queue import QueueQuery

CHECK_FLAGS = [flag for flag, metric in FLAG_METRICS.items() if metric == CHECKS_METRIC]


def _queue_counts(store: Store, dataset_id: int) -> dict[str, int]:
    """Each flag counted through the review queue's filter: a scan, the definition."""
    return {
        flag: store.queue_count(dataset_id, QueueQuery(flags=(flag,))) for flag in DERIVED_FLAGS
    }


def _scores(rng: random.Random, versions: list[tuple[int, int | None]]) -> list[Score]:
    """Scores on both sides of every flag's threshold (IFD 1, drift 0.5, judge 3)."""
    out = []
    for version in versions:

        def score(
            metric: str, value: float, detail: dict | None = None, scorer: str = "", at=version
        ) -> None:
            out.append(Score(at[0], metric, value, scorer, at[1], detail or {}))

        if rng.random() < 0.8:
            score(IFD_METRIC, rng.choice([0.4, 0.99, 1.0, 1.3]), scorer="student")
        if rng.random() < 0.3:  # a second student: a sample is misaligned once, not twice
            score(IFD_METRIC, rng.choice([0.7, 1.2]), scorer="other")
        if version[1] is not None and rng.random() < 0.8:
            score(DRIFT_METRIC, rng.choice([0.2, 0.49, 0.5, 0.9]))
        if rng.random() < 0.5:
            score(JUDGE_METRIC, rng.choice([1.0, 3.0, 3.5, 9.0]), scorer="judge")
        if rng.random() < 0.7:
            raised = {flag: "a reason" for flag in CHECK_FLAGS if rng.random() < 0.25}
            score(CHECKS_METRIC, float(len(raised)), {"flags": raised})
        if rng.random() < 0.4:
            off = rng.random() < 0.5
            score(RELEVANCE_METRIC, 0.1 if off else 0.8,
                  {"flags": {"off_topic": "far"}} if off else {})  # fmt: skip
    return out


def _fill(
    store: Store, rng: random.Random, dataset_id: int, n: int
) -> list[tuple[int, int | None]]:
    store.add_samples(
        dataset_id, [Sample(instruction=f"Q{dataset_id}-{i}", output=f"A{i}") for i in range(n)]
    )
    ids = store.sample_ids(dataset_id)
    candidates = [
        Candidate(sid, "response", output=f"better {sid}", status=rng.choice(CANDIDATE_STATUSES))
        for sid in ids[: n * 3 // 4]
        for _ in range(rng.choice([1, 1, 2]))
    ]
    cids = store.add_candidates(candidates)
    versions: list[tuple[int, int | None]] = [(sid, None) for sid in ids]
    versions += [(c.sample_id, cid) for c, cid in zip(candidates, cids, strict=True)]
    store.put_scores(_scores(rng, versions))
    return versions


@pytest.mark.both_backends
def test_kept_flags_equal_the_queue_filters_through_rescoring_and_deletes(store):
    rng = random.Random(20)
    data, other = store.ensure_dataset("data"), store.ensure_dataset("other")
    versions = _fill(store, rng, data.id, 80)
    _fill(store, rng, other.id, 20)  # a second dataset's counts stay its own
    expected = _queue_counts(store, data.id)
    assert store.flag_counts(data.id) == expected
    # Every flag is met by some samples and missed by others, so none passes by being 0.
    assert all(0 < expected[flag] < 80 for flag in DERIVED_FLAGS), expected

    for round_ in range(3):  # rescoring: the same keys, values across the thresholds
        store.put_scores(_scores(random.Random(round_), versions))
        assert store.flag_counts(data.id) == _queue_counts(store, data.id)

    ids = store.sample_ids(data.id)
    with store.transaction():  # deletes: scores of some samples, candidates of others
        store.conn.execute(
            "DELETE FROM scores WHERE sample_id IN (SELECT value FROM json_each(?))",
            [str(ids[:15])],
        )
        store.conn.execute(
            "DELETE FROM scores WHERE sample_id IN (SELECT value FROM json_each(?))"
            " AND candidate_id != 0",
            [str(ids[15:40])],
        )
        store.conn.execute(
            "DELETE FROM candidates WHERE sample_id IN (SELECT value FROM json_each(?))",
            [str(ids[15:40])],
        )
    assert store.flag_counts(data.id) == _queue_counts(store, data.id)
    assert store.flag_counts(other.id) == _queue_counts(store, other.id)
    assert store.tally_check() == []
    # The Dashboard's chart reads the kept counts.
    frame = dashboard_flags(store, data.id)
    review = frame[frame["from"] == "review"].set_index("flag")["n"].to_dict()
    assert review == _queue_counts(store, data.id)


@pytest.mark.both_backends
def test_a_status_change_moves_a_sample_in_and_out_of_its_candidate_flags(store):
    data = store.ensure_dataset("data")
    store.add_samples(data.id, [Sample(instruction="Q", output="A")])
    [sid] = store.sample_ids(data.id)
    first, second = store.add_candidates(
        [Candidate(sid, "response", status="failed"), Candidate(sid, "both", status="error")]
    )
    assert store.flag_counts(data.id)["parse_failed"] == 1  # one sample, two failed versions
    with store.transaction():
        store.conn.execute("UPDATE candidates SET status = 'ok' WHERE id = ?", [first])
    assert store.flag_counts(data.id)["parse_failed"] == 1  # the other still fails
    with store.transaction():
        store.conn.execute("UPDATE candidates SET status = 'truncated' WHERE id = ?", [second])
    assert store.flag_counts(data.id) == _queue_counts(store, data.id)
    assert store.flag_counts(data.id)["parse_failed"] == 0
    assert store.flag_counts(data.id)["truncated"] == 1
    assert store.flag_counts(data.id)["no_candidate"] == 0


@pytest.mark.both_backends
def test_a_store_from_before_the_kept_flags_counts_them_on_upgrade(store_target):
    rng = random.Random(3)
    with Store(store_target) as old:
        with old.transaction():
            forget_kept_flags(old)
        data = old.ensure_dataset("d")
        _fill(old, rng, data.id, 40)  # written with no trigger to count its flags
        expected = _queue_counts(old, data.id)
    with Store(store_target) as upgraded:  # opening migrates: m020 counts what is there
        assert upgraded.flag_counts(data.id) == expected
        assert upgraded.tally_check() == []


@pytest.mark.both_backends
def test_a_copied_store_keeps_its_flag_counts(tmp_path, store_target):
    """Copied into SQLite, or into PostgreSQL by COPY: the destination's triggers count."""
    rng = random.Random(5)
    with Store(tmp_path / "source.db") as source:
        data = source.ensure_dataset("d")
        _fill(source, rng, data.id, 30)
        expected = _queue_counts(source, data.id)
        with Store(store_target) as destination:
            copy_store(source, destination)
            assert destination.flag_counts(data.id) == expected
            assert destination.tally_check() == []


@pytest.mark.both_backends
def test_stats_recount_corrects_a_count_that_went_wrong(store, store_target):
    from click.testing import CliRunner

    from reflection.cli import main

    data = store.ensure_dataset("data")
    _fill(store, random.Random(9), data.id, 30)
    expected = _queue_counts(store, data.id)
    with store.transaction():  # as if a write had bypassed the triggers, or raced on them
        if store.dialect == "sqlite":
            store.conn.execute("UPDATE tallies SET n = n + 5 WHERE name = 'flag:drift'")
        else:
            store.conn.execute(
                "INSERT INTO tally_deltas (dataset_id, name, n) VALUES (?, 'flag:drift', 5)",
                [data.id],
            )
    assert store.flag_counts(data.id)["drift"] == expected["drift"] + 5
    result = CliRunner().invoke(main, ["stats", "--db", str(store_target), "--recount"])
    assert result.exit_code == 0, result.output
    drift = expected["drift"]
    assert f"recounted flag:drift of data: {drift + 5} -> {drift}" in result.output
    assert "recount: 1 kept counts corrected" in result.output
    assert store.flag_counts(data.id) == expected
    assert store.tally_check() == []
    again = CliRunner().invoke(main, ["stats", "--db", str(store_target), "--recount"])
    assert "recount: 0 kept counts corrected" in again.output
