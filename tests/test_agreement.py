"""Agreement statistics against values computed by hand, and the `agreement` command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.records import Candidate, Review, Sample
from reflection.team import agreement as stats
from reflection.team.agreement import category, compute

pytestmark = pytest.mark.both_backends

ORIG, R, E = "original", "rejected", "edited"
C5, C7 = "candidate 5", "candidate 7"

# Two reviewers, ten samples. a: O x6, R x4; b: O x4, then R R R R R O.
#   agree on 1-4 (O) and 7-9 (R): p_o = 7/10.
#   Cohen: p_e = (6/10)(5/10) + (4/10)(5/10) = 1/2, kappa = (0.7 - 0.5) / 0.5 = 0.4.
#   Fleiss: p_O = 11/20, p_R = 9/20, P_e = 0.3025 + 0.2025 = 0.505,
#           kappa = (0.7 - 0.505) / 0.495 = 13/33.
#   Krippendorff (nominal): coincidences o_OO = 8, o_RR = 6, o_OR = o_RO = 3; n_O = 11,
#           n_R = 9, n = 20; alpha = 1 - (n - 1) * 6 / (2 * 11 * 9) = 1 - 114/198 = 14/33.
TWO = {
    n: {"a": a, "b": b}
    for n, (a, b) in enumerate(
        zip([ORIG] * 6 + [R] * 4, [ORIG] * 4 + [R] * 5 + [ORIG], strict=True), start=1
    )
}

# Three reviewers, four samples; which candidate counts.
#   1: C5 C5 C5   2: C5 C7 C5   3: R R R   4: O E O
#   P_i = 1, 1/3, 1, 1/3 -> P = 2/3 (also the percent agreement).
#   totals C5 5, C7 1, E 1, O 2, R 3 of 12: P_e = (25 + 1 + 1 + 4 + 9) / 144 = 5/18,
#   Fleiss kappa = (2/3 - 5/18) / (13/18) = 7/13.
#   Krippendorff: n = 12, sum of n_c^2 = 40, disagreeing coincidences 4:
#   alpha = 1 - 11 * 4 / (144 - 40) = 15/26.
#   Cohen a/b: p_o = 1/2, p_e = (2/4)(1/4) + (1/4)(1/4) = 3/16 -> 5/13; a/c identical -> 1;
#   b/c as a/b -> 5/13.
THREE = {
    1: {"a": C5, "b": C5, "c": C5},
    2: {"a": C5, "b": C7, "c": C5},
    3: {"a": R, "b": R, "c": R},
    4: {"a": ORIG, "b": E, "c": ORIG},
}


def test_two_reviewers_by_hand():
    result = compute(TWO, bootstrap=0)
    assert result.n_items == 10 and result.n_reviewers == 2
    assert result.percent == pytest.approx(0.7)
    assert result.cohen_kappa == [{"a": "a", "b": "b", "kappa": pytest.approx(0.4), "n": 10}]
    assert result.fleiss_kappa == pytest.approx(13 / 33)
    assert result.krippendorff_alpha == pytest.approx(14 / 33)
    assert result.fleiss_n_items == 10


def test_three_reviewers_by_hand_where_the_candidate_counts():
    result = compute(THREE, bootstrap=0)
    assert result.percent == pytest.approx(2 / 3)
    assert result.fleiss_kappa == pytest.approx(7 / 13)
    assert result.krippendorff_alpha == pytest.approx(15 / 26)
    kappas = {(p["a"], p["b"]): p["kappa"] for p in result.cohen_kappa}
    assert kappas == {
        ("a", "b"): pytest.approx(5 / 13),
        ("a", "c"): pytest.approx(1.0),
        ("b", "c"): pytest.approx(5 / 13),
    }
    assert result.categories == sorted([C5, C7, E, ORIG, R])


def test_confusion_against_the_majority_or_the_adjudication():
    # Consensus by majority: 1 C5, 2 C5, 3 R, 4 O. b chose C7 on 2 (a candidate, but not the
    # consensus's) and edited 4.
    result = compute(THREE, bootstrap=0)
    b = result.confusion["b"]
    assert b["labels"] == ["original", "candidate", "edited", "rejected"]
    assert b["matrix"] == [[0, 0, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    assert (b["n"], b["agree"]) == (4, 2)
    assert result.confusion["a"]["agree"] == 4
    # An adjudication overrides the majority.
    adjudicated = compute(THREE, {4: E}, bootstrap=0)
    assert adjudicated.confusion["b"]["agree"] == 3
    assert adjudicated.confusion["a"]["agree"] == 3


def test_fleiss_uses_the_most_usual_number_of_ratings_alpha_uses_all():
    ratings = {**THREE, 5: {"a": ORIG, "b": R}}  # one sample decided by two of three
    result = compute(ratings, bootstrap=0)
    assert result.n_items == 5 and result.fleiss_n_items == 4
    assert result.fleiss_kappa == pytest.approx(7 / 13)
    assert result.krippendorff_alpha != pytest.approx(15 / 26)


def test_single_ratings_do_not_count_and_undefined_statistics_are_none():
    same = {1: {"a": ORIG, "b": ORIG}, 2: {"a": ORIG, "b": ORIG}, 3: {"a": R}}
    result = compute(same, bootstrap=50)
    assert result.n_items == 2 and result.percent == 1.0
    assert result.fleiss_kappa is None and result.krippendorff_alpha is None
    assert result.cohen_kappa[0]["kappa"] is None
    assert result.fleiss_kappa_ci is None
    empty = compute({}, bootstrap=50)
    assert (empty.n_items, empty.percent, empty.cohen_kappa) == (0, None, [])


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    first = compute(TWO, bootstrap=300, seed=4)
    assert first.fleiss_kappa_ci == compute(TWO, bootstrap=300, seed=4).fleiss_kappa_ci
    assert first.fleiss_kappa_ci != compute(TWO, bootstrap=300, seed=5).fleiss_kappa_ci
    for value, (low, high) in (
        (first.fleiss_kappa, first.fleiss_kappa_ci),
        (first.krippendorff_alpha, first.krippendorff_alpha_ci),
    ):
        assert -1 <= low < value < high <= 1


@pytest.mark.parametrize(
    ("status", "candidate_id", "expected"),
    [
        ("accepted", None, "original"),
        ("accepted", 12, "candidate 12"),
        ("edited", 40, "edited"),
        ("rejected", None, "rejected"),
        ("skipped", None, None),
    ],
)
def test_categories(status, candidate_id, expected):
    assert category(status, candidate_id) == expected


def _reviewed(store):
    """TWO as reviews in a store; reviewer a also skips an eleventh sample b rejects."""
    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(instruction=f"q{n}", output="x") for n in range(11)])
    ids = store.sample_ids(ds.id)
    store.add_assignments(ds.id, [(s, r) for s in ids for r in ("a", "b")])
    decision = {ORIG: "accept", R: "reject"}
    for sid, n in zip(ids, range(1, 11), strict=False):
        for reviewer in ("a", "b"):
            store.add_review(
                Review(sample_id=sid, decision=decision[TWO[n][reviewer]], annotator=reviewer)
            )
    store.add_review(Review(sample_id=ids[10], decision="skip", annotator="a"))
    store.add_review(Review(sample_id=ids[10], decision="reject", annotator="b"))
    return ds


def test_agreement_from_the_store_skips_do_not_count(store):
    _reviewed(store)
    result = stats.agreement(store, "d", bootstrap=0)
    assert result.n_items == 10
    assert result.cohen_kappa[0]["kappa"] == pytest.approx(0.4)
    assert result.krippendorff_alpha == pytest.approx(14 / 33)


def test_an_adjudication_is_no_reviewers_vote(store):
    ds = _reviewed(store)
    from reflection.team.adjudicate import adjudicate

    first = store.sample_ids(ds.id)[4]  # a: O, b: R
    adjudicate(store, first, "boss", "reject")
    result = stats.agreement(store, "d", bootstrap=0)
    assert result.n_reviewers == 2
    assert result.krippendorff_alpha == pytest.approx(14 / 33)
    assert result.confusion["b"]["agree"] >= 1


def test_edits_are_one_category_whatever_their_text(store):
    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(instruction="q", output="x")])
    [sid] = store.sample_ids(ds.id)
    for reviewer in ("a", "b"):
        edit = store.add_candidate(
            Candidate(sample_id=sid, kind="edit", output=reviewer, annotator=reviewer)
        )
        store.add_review(
            Review(sample_id=sid, decision="edit", candidate_id=edit, annotator=reviewer)
        )
    found, _ = stats.ratings(store, ds.id)
    assert found == {sid: {"a": "edited", "b": "edited"}}


def test_agreement_command_json_keys(store):
    _reviewed(store)
    store.close()
    result = CliRunner().invoke(
        main, ["agreement", "--db", str(store.path), "--json", "--bootstrap", "100"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"percent", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "n_items"} <= set(data)
    assert data["n_items"] == 10
    assert data["percent"] == pytest.approx(0.7)
    assert data["cohen_kappa"] == [{"a": "a", "b": "b", "kappa": pytest.approx(0.4), "n": 10}]
    assert data["fleiss_kappa"] == pytest.approx(13 / 33)
    assert data["krippendorff_alpha"] == pytest.approx(14 / 33)
    assert len(data["fleiss_kappa_ci"]) == 2
    text = CliRunner().invoke(main, ["agreement", "--db", str(store.path), "--bootstrap", "50"])
    assert "percent agreement: 70.0%" in text.output
    assert "Cohen's kappa a / b: 0.400  on 10 samples" in text.output


def test_ratings_read_only_samples_two_reviewers_decided(store):
    """Agreement ignores samples rated once, so they are not even read (a dataset decided by
    one reviewer each is read in SQL, not row by row in Python); the figures are the same."""
    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(instruction=f"q{i}", output="x") for i in range(4)])
    ids = store.sample_ids(ds.id)
    store.add_reviews(
        [Review(ids[0], "accept", annotator="a"), Review(ids[0], "reject", annotator="b")]
        + [Review(sid, "accept", annotator="a") for sid in ids[1:]]
    )
    found, _ = stats.ratings(store, ds.id)
    assert found == {ids[0]: {"a": "original", "b": "rejected"}}
    everything = {}
    for row in store.track_rows(ds.id):
        everything.setdefault(row["sample_id"], {})[row["reviewer"]] = stats.category(
            row["status"], row["candidate_id"]
        )
    assert len(everything) == 4
    assert stats.compute(everything, bootstrap=10) == stats.compute(found, bootstrap=10)
