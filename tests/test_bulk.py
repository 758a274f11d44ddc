"""Bulk rules: preview counts match the rule computed in Python; apply is one undoable run."""

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
    suggested_decision,
    suggested_kind,
)

from reflection import ReflectionError, Score
from reflection.records import Condition
from reflection.select.bulk import PRESETS, BulkRule, apply, bulk_runs, preview, undo
from reflection.store import Store
from reflection.team.adjudicate import adjudicate
from reflection.team.agreement import ratings
from reflection.team.assign import assign_dataset

pytestmark = pytest.mark.both_backends

N = 40
ACCEPT_SUGGESTED = PRESETS["Accept the suggestion where IFD < 1 and drift is low"]
REJECT_FAILED = PRESETS["Reject samples whose reflections all failed to parse"]


@pytest.fixture
def built(store):
    return build(store, N)


def expected_accept_suggested(indices) -> list[int]:
    found = []
    for i in indices:
        if reflection_failed(i) or suggested_decision(i) != "accept":
            continue  # no suggestion stored, or it proposes leaving the sample out
        kind = suggested_kind(i)
        ifd = original_ifd(i) if kind == "original" else response_ifd(i)
        similarity = 1.0 if kind == "original" else drift(i)
        if ifd < 1 and similarity >= 0.5:
            found.append(i)
    return found


def test_preview_counts_what_the_rule_says(store, built):
    result = preview(store, built["dataset"].id, ACCEPT_SUGGESTED, examples=3)
    expected = expected_accept_suggested(range(N))
    assert result.count == len(expected)
    assert [e.sample_id for e in result.examples] == [built["ids"][i] for i in expected[:3]]
    for example in result.examples:
        i = built["ids"].index(example.sample_id)
        assert example.kind == suggested_kind(i)
        want_ifd = original_ifd(i) if example.kind == "original" else response_ifd(i)
        assert example.scores["ifd_ppl"] == pytest.approx(want_ifd)


def test_preview_changes_nothing(store, built):
    before = store.version()
    preview(store, built["dataset"].id, ACCEPT_SUGGESTED)
    assert store.version() == before


def test_apply_records_one_run_whose_reviews_carry_its_id(store, built):
    expected = expected_accept_suggested(range(N))
    run = apply(store, built["dataset"].id, ACCEPT_SUGGESTED, annotator="ana")
    assert run.kind == "bulk" and run.status == "done"
    assert run.counters["reviews"] == len(expected)
    assert run.settings["rule"]["target"] == "suggested"
    for i in range(N):
        state = store.state(built["ids"][i])
        if i in expected:
            kind = suggested_kind(i)
            want = None if kind == "original" else built["candidates"][(i, kind)]
            assert (state.status, state.candidate_id, state.annotator) == ("accepted", want, "ana")
            [review] = store.reviews_for(built["ids"][i])
            assert review.run_id == run.id and review.tags == ["bulk"]
        else:
            assert state.status == "undecided"


def test_apply_skips_samples_decided_since_the_preview(store, built):
    dataset_id = built["dataset"].id
    expected = expected_accept_suggested(range(N))
    first = expected[0]
    decide(store, built, {first: ("reject", None)}, "bob")
    run = apply(store, dataset_id, ACCEPT_SUGGESTED)
    assert run.counters["reviews"] == len(expected) - 1
    assert store.state(built["ids"][first]).status == "rejected"


def test_undo_takes_back_the_whole_run_and_nothing_else(store, built):
    dataset_id = built["dataset"].id
    decide(store, built, {1: ("reject", None)}, "bob")  # decided by hand before the bulk run
    counts_before = store.status_counts(dataset_id)
    run = apply(store, dataset_id, ACCEPT_SUGGESTED)
    assert store.status_counts(dataset_id)["accepted"] == run.counters["reviews"]
    # A person changes one bulk decision afterwards: undo must leave theirs in force.
    changed = expected_accept_suggested(range(N))[0]
    decide(store, built, {changed: ("reject", None)}, "bob")
    undone = undo(store, run.id, annotator="ana")
    assert undone == run.counters["reviews"] - 1
    after = store.status_counts(dataset_id)
    assert after["rejected"] == counts_before["rejected"] + 1
    assert after["accepted"] == 0
    assert store.get_run(run.id).status == "undone"
    [info] = bulk_runs(store, dataset_id)
    assert (info.id, info.status, info.in_force) == (run.id, "undone", 0)


def test_reject_parse_failures(store, built):
    failed = [i for i in range(N) if reflection_failed(i)]
    result = preview(store, built["dataset"].id, REJECT_FAILED)
    assert result.count == len(failed)
    apply(store, built["dataset"].id, REJECT_FAILED)
    assert store.status_counts(built["dataset"].id)["rejected"] == len(failed)
    for i in failed:
        assert store.state(built["ids"][i]).status == "rejected"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            BulkRule(
                target="kind", kind="instruction", conditions=(Condition("ifd_ppl", "<=", 0.65),)
            ),
            lambda i: not reflection_failed(i) and instruction_ifd(i) <= 0.65 + 1e-9,
        ),
        (
            BulkRule(
                target="kind",
                kind="response",
                conditions=(
                    Condition("ifd_ppl", "<", 1.0),
                    Condition("drift", ">=", 0.5, original_value=1.0),
                ),
            ),
            lambda i: not reflection_failed(i) and response_ifd(i) < 1 and drift(i) >= 0.5,
        ),
        (
            BulkRule(target="original", conditions=(Condition("ifd_ppl", ">=", 1.0),)),
            lambda i: original_ifd(i) >= 1.0 - 1e-9,
        ),
        (
            BulkRule(
                target="kind",
                kind="response",
                conditions=(Condition("ifd_ppl", "<", 1.0, scorer="other-student"),),
            ),
            lambda i: False,  # no scores from that scorer
        ),
        (
            BulkRule(
                action="reject", target="suggested", conditions=(Condition("drift", "<", 0.5),)
            ),
            lambda i: (
                not reflection_failed(i)
                and suggested_decision(i) == "reject"
                and suggested_kind(i) != "original"
                and drift(i) < 0.5
            ),
        ),
        (
            BulkRule(action="reject", target="suggested"),
            lambda i: not reflection_failed(i) and suggested_decision(i) == "reject",
        ),
    ],
)
def test_rules_table(store, built, rule, expected):
    result = preview(store, built["dataset"].id, rule, examples=100)
    want = [built["ids"][i] for i in range(N) if expected(i)]
    assert [e.sample_id for e in result.examples] == want
    assert result.count == len(want)
    # With fewer examples than matches, the database counts: the same number.
    assert preview(store, built["dataset"].id, rule, examples=1).count == len(want)


def test_a_condition_reads_the_newest_scorers_value(store, built):
    """Two scorers scored the same version: the newer scorer's value decides."""
    ids = built["ids"][:4]
    rule = BulkRule(target="original", conditions=(Condition("ifd_ppl", "<", 1.0),))
    before = preview(store, built["dataset"].id, rule, examples=0).count
    store.put_scores(Score(sid, "ifd_ppl", 0.2, scorer="older") for sid in ids)
    store.put_scores(Score(sid, "ifd_ppl", 1.7, scorer="newer") for sid in ids)
    after = preview(store, built["dataset"].id, rule, examples=0).count
    was_below = sum(original_ifd(i) < 1.0 for i in range(4))
    assert was_below and after == before - was_below


def test_status_filter_and_other_datasets(store, built):
    other = build(store, 10, name="other", hostile=False)
    decide(store, built, {2: ("skip", None)}, "bob")
    rule = BulkRule(target="original", statuses=("skipped",))
    result = preview(store, built["dataset"].id, rule)
    assert [e.sample_id for e in result.examples] == [built["ids"][2]]
    everything = BulkRule(target="original", statuses=("undecided",))
    assert preview(store, other["dataset"].id, everything).count == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": "delete"},
        {"target": "best"},
        {"target": "kind"},
        {"statuses": ("finished",)},
    ],
)
def test_bad_rules_are_refused(kwargs):
    with pytest.raises(ReflectionError):
        BulkRule(**kwargs)


def test_a_condition_with_an_unknown_comparison_is_refused():
    # The comparison becomes SQL text: anything off the whitelist must never get that far.
    with pytest.raises(ReflectionError, match="unknown comparison"):
        Condition("ifd_ppl", "; DROP TABLE samples; --", 1.0)


def test_rule_round_trips_through_run_settings(store, built):
    run = apply(store, built["dataset"].id, ACCEPT_SUGGESTED)
    assert BulkRule.from_dict(store.get_run(run.id).settings["rule"]) == ACCEPT_SUGGESTED
    assert "ifd_ppl < 1" in ACCEPT_SUGGESTED.describe()


def test_apply_is_all_or_nothing(tmp_path, monkeypatch):
    with Store(tmp_path / "a.db") as store:
        built = build(store, 12)
        real = store._append
        written = []

        def broken(review):  # the fifth decision fails, after four were written
            if len(written) == 4:
                raise RuntimeError("disk full")
            real(review)
            written.append(review)

        monkeypatch.setattr(store, "_append", broken)
        with pytest.raises(RuntimeError):
            apply(store, built["dataset"].id, BulkRule(target="original"))
        assert len(written) == 4
        assert store.status_counts(built["dataset"].id)["undecided"] == 12
        assert store.runs("bulk") == []


def test_cli_lists_previews_applies_and_undoes(tmp_path):
    from click.testing import CliRunner

    from reflection.cli import main

    db = tmp_path / "cli.db"
    with Store(db) as store:
        built = build(store, N)
        expected = preview(store, built["dataset"].id, ACCEPT_SUGGESTED).count
    runner = CliRunner()
    listed = runner.invoke(main, ["bulk", "--db", str(db)])
    assert listed.exit_code == 0 and "accept-suggested" in listed.output
    shown = runner.invoke(main, ["bulk", "accept-suggested", "--db", str(db)])
    assert shown.exit_code == 0 and shown.output.startswith(f"{expected} samples: accept")
    applied = runner.invoke(main, ["bulk", "accept-suggested", "--apply", "--db", str(db)])
    assert applied.exit_code == 0, applied.output
    with Store(db) as store:
        [run] = store.runs("bulk")
        assert store.status_counts(built["dataset"].id)["accepted"] == expected
    undone = runner.invoke(main, ["bulk", "--undo", str(run.id), "--db", str(db)])
    assert undone.output.strip() == f"Undid {expected} decisions of run {run.id}"
    bad = runner.invoke(main, ["bulk", "accept-everything", "--db", str(db)])
    assert bad.exit_code == 1 and "unknown rule 'accept-everything'" in bad.output


# --- on an assigned dataset ---------------------------------------------------------------------

KEEP_ORIGINAL = BulkRule(action="accept", target="original", note="keep the originals")


def reviewer_tracks(store, ids) -> dict:
    """Every reviewer's own decision in force: (sample, reviewer) -> (decision, candidate)."""
    return {
        (sid, reviewer): (review.decision, review.candidate_id)
        for sid in ids
        for (kind, reviewer), review in store.tracks(sid).items()
        if kind == ""
    }


def test_bulk_on_an_assigned_dataset_adjudicates_and_undo_takes_back_only_that(store, built):
    ds, ids = built["dataset"], built["ids"]
    assign_dataset(store, ds.id, ["amy", "bea"], 2, seed=3, actor="ana")
    # Both reviewers decide the first ten samples: agreeing on 0-4, disagreeing on 5-9.
    decide(store, built, {i: ("reject", None) for i in range(10)}, "amy")
    decide(store, built, {i: ("reject" if i < 5 else "accept", None) for i in range(10)}, "bea")
    ratings_before = ratings(store, ds.id)
    run = apply(store, ds.id, KEEP_ORIGINAL, annotator="ana")
    matched = list(range(5, N))  # the disputed and the undecided; not the agreed rejections
    assert run.counters["reviews"] == len(matched)
    written = store.query(
        "SELECT sample_id, kind, annotator FROM reviews WHERE run_id = ?", [run.id]
    )
    assert {(r["kind"], r["annotator"]) for r in written} == {("adjudication", "ana")}
    assert sorted(r["sample_id"] for r in written) == [ids[i] for i in matched]
    # The admin's rule settles those samples without posing as a third reviewer.
    assert ratings(store, ds.id)[0] == ratings_before[0]
    assert {store.state(ids[i]).status for i in matched} == {"accepted"}
    assert max(len({r for s, r in reviewer_tracks(store, [sid])}) for sid in ids) <= 2
    # After the run: amy changes her mind on sample 5, an admin adjudicates sample 6 by hand.
    decide(store, built, {5: ("accept", None)}, "amy")
    adjudicate(store, ids[6], "ana", "reject")
    tracks_before_undo = reviewer_tracks(store, ids)
    [info] = bulk_runs(store, ds.id)
    assert info.in_force == len(matched) - 1  # sample 6's bulk decision is no longer on top
    # Another admin undoes the run: exactly its decisions still standing go, nobody else's.
    assert undo(store, run.id, annotator="bob") == len(matched) - 1
    assert reviewer_tracks(store, ids) == tracks_before_undo
    assert store.state(ids[5]).status == "accepted"  # amy and bea now agree
    assert store.state(ids[6]).status == "rejected"  # the hand-made adjudication stands
    assert [i for i in range(N) if store.state(ids[i]).status != "undecided"] == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    assert bulk_runs(store, ds.id)[0].in_force == 0
    assert undo(store, run.id, annotator="bob") == 0  # a second undo takes back nothing


def test_undo_of_a_run_made_before_the_dataset_was_assigned(store, built):
    ds, ids = built["dataset"], built["ids"]
    run = apply(store, ds.id, KEEP_ORIGINAL, annotator="ana")
    assign_dataset(store, ds.id, ["amy", "bea"], 2, seed=3, actor="ana")
    decide(store, built, {i: ("reject", None) for i in range(4)}, "amy")
    decide(store, built, {i: ("reject", None) for i in range(4)}, "bea")
    tracks_before_undo = reviewer_tracks(store, ids)
    assert bulk_runs(store, ds.id)[0].in_force == run.counters["reviews"]
    assert undo(store, run.id, annotator="bob") == run.counters["reviews"]
    # ana's bulk decisions are gone from her track; amy's and bea's are untouched.
    after = reviewer_tracks(store, ids)
    assert after == {k: v for k, v in tracks_before_undo.items() if k[1] != "ana"}
    assert [i for i in range(N) if store.state(ids[i]).status != "undecided"] == [0, 1, 2, 3]
    [undo_review] = [r for r in store.reviews_for(ids[0]) if r.decision == "undo"]
    assert (undo_review.annotator, undo_review.note) == ("ana", f"bulk run {run.id} undone by bob")
