"""What counts when several reviewers decided a sample: export --consensus, provenance, and
the team commands (assign, reassign, progress)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.errors import ReflectionError
from reflection.export.curated import export_dataset, export_records
from reflection.records import Candidate, Review, Sample
from reflection.team.adjudicate import adjudicate, load_dispute


@pytest.fixture
def voted(store):
    """Four samples, each with one reflected candidate, assigned to a, b and c.

    1: a and b accept the candidate, c rejects     (majority: candidate; disputed)
    2: all three reject                            (rejected whatever the mode)
    3: a accepts the original, b rejects           (no majority; adjudicated: the candidate)
    4: a and b edit to the same text, c skips      (edited)
    """
    ds = store.ensure_dataset("d")
    store.add_samples(
        ds.id, [Sample(instruction=f"q{n}", output=f"a{n}", position=n) for n in range(4)]
    )
    ids = store.sample_ids(ds.id)
    cands = [
        store.add_candidate(Candidate(sample_id=s, kind="response", output=f"better {n}"))
        for n, s in enumerate(ids)
    ]
    store.add_assignments(ds.id, [(s, r) for s in ids for r in ("a", "b", "c")])

    def vote(sample, reviewer, decision, candidate=None):
        store.add_review(
            Review(sample_id=sample, decision=decision, candidate_id=candidate, annotator=reviewer)
        )

    vote(ids[0], "a", "accept", cands[0])
    vote(ids[0], "b", "accept", cands[0])
    vote(ids[0], "c", "reject")
    for reviewer in ("a", "b", "c"):
        vote(ids[1], reviewer, "reject")
    vote(ids[2], "a", "accept")
    vote(ids[2], "b", "reject")
    for reviewer in ("a", "b"):
        edit = store.add_candidate(
            Candidate(sample_id=ids[3], kind="edit", output="fixed", annotator=reviewer)
        )
        vote(ids[3], reviewer, "edit", edit)
    vote(ids[3], "c", "skip")
    adjudicate(store, ids[2], "boss", "accept", cands[2])
    return store, ids, cands


def outputs(store, consensus, undecided="skip"):
    records, counts = export_records(
        store, "d", undecided=undecided, consensus=consensus, provenance=True
    )
    return [r["output"] for r in records], counts, records


def test_majority(voted):
    store, _, _ = voted
    found, counts, _ = outputs(store, "majority")
    assert found == ["better 0", "fixed"]
    assert counts["rejected"] == 1 and counts["undecided"] == 1 and counts["disputed"] == 1


def test_unanimous(voted):
    store, _, _ = voted
    found, counts, _ = outputs(store, "unanimous")
    assert found == ["fixed"]
    assert counts["disputed"] == 2  # 1 and 3


def test_adjudicated(voted):
    store, _, _ = voted
    found, counts, _ = outputs(store, "adjudicated")
    assert found == ["better 2", "fixed"]
    assert counts["disputed"] == 1


def test_undecided_policy_applies_to_samples_without_consensus(voted):
    store, _, _ = voted
    found, _, _ = outputs(store, "unanimous", undecided="original")
    assert found == ["a0", "a2", "fixed"]  # unanimous ignores the adjudication


def test_without_consensus_the_settled_state_counts(voted):
    # For assigned samples the state in force is the adjudicated consensus.
    store, _, _ = voted
    records, counts = export_records(store, "d")
    assert [r["output"] for r in records] == ["better 2", "fixed"]
    assert "disputed" not in counts


def test_provenance_lists_every_reviewers_decision(voted):
    store, ids, cands = voted
    _, _, records = outputs(store, "adjudicated")
    provenance = records[0]["provenance"]
    assert provenance["consensus"] == "adjudicated"
    assert provenance["annotator"] == "boss"
    assert [(v["reviewer"], v["decision"], v["adjudication"]) for v in provenance["reviews"]] == [
        ("a", "accepted", False),
        ("b", "rejected", False),
        ("boss", "accepted", True),
    ]
    assert provenance["reviews"][2]["candidate_id"] == cands[2]


def test_unknown_consensus_is_refused(voted):
    store, _, _ = voted
    with pytest.raises(ReflectionError, match="unknown consensus 'most'"):
        export_records(store, "d", consensus="most")


def test_export_run_records_the_consensus(voted, tmp_path):
    store, _, _ = voted
    result = export_dataset(store, "d", tmp_path / "out.csv", consensus="majority", provenance=True)
    assert result.written == 2
    assert store.runs("export")[0].settings["consensus"] == "majority"
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert "provenance_reviews" in header and "provenance_consensus" in header


def test_load_dispute_shows_each_reviewers_version(voted):
    store, ids, cands = voted
    dispute = load_dispute(store, ids[0])
    assert [(d.reviewer, d.status) for d in dispute.decisions] == [
        ("a", "accepted"), ("b", "accepted"), ("c", "rejected"),
    ]  # fmt: skip
    assert dispute.decisions[0].candidate.output == "better 0"
    assert dispute.decisions[0].decision() == ("accept", cands[0])
    assert dispute.decisions[2].decision() == ("reject", None)
    assert dispute.adjudication is None
    assert load_dispute(store, ids[2]).adjudication.annotator == "boss"


def test_adjudication_takes_accept_edit_or_reject_only(voted):
    store, ids, _ = voted
    with pytest.raises(ReflectionError, match="not 'skip'"):
        adjudicate(store, ids[0], "boss", "skip")


# --- the commands ----------------------------------------------------------------------------


def test_export_command_with_consensus(voted, tmp_path):
    store, _, _ = voted
    store.close()
    out = tmp_path / "team.json"
    result = CliRunner().invoke(
        main,
        ["export", "--db", str(store.path), "--out", str(out), "--consensus", "majority",
         "--provenance"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Wrote 2 records" in result.output and "disputed 1" in result.output
    records = json.loads(out.read_text())
    assert [len(r["provenance"]["reviews"]) for r in records] == [3, 3]


def test_assign_reassign_and_progress_commands(tmp_path):
    db = str(tmp_path / "t.db")
    runner = CliRunner()
    from reflection.store import Store

    with Store(db) as store:
        ds = store.ensure_dataset("d")
        store.add_samples(ds.id, [Sample(instruction=f"q{n}", output="x") for n in range(9)])
    result = runner.invoke(
        main, ["assign", "--db", db, "--reviewers", "ann,bob,cy", "--overlap", "2", "--by", "al"]
    )
    assert result.exit_code == 0, result.output
    assert "Assigned 9 samples of 'd' (18 assignments, overlap 2)" in result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["reviewer", "assigned", "decided", "skipped", "open", "done"] in lines
    assert ["ann", "6", "0", "0", "6", "0%"] in lines
    result = runner.invoke(
        main, ["reassign", "--db", db, "--from", "bob", "--to", "dee", "--by", "al"]
    )
    assert result.exit_code == 0, result.output
    assert "Moved 6 open samples from bob (dee 6)" in result.output
    result = runner.invoke(main, ["progress", "--db", db, "--json"])
    rows = {row["reviewer"]: row for row in json.loads(result.output)}
    assert rows["dee"]["assigned"] == 6 and "bob" not in rows
    with Store(db) as store:
        assert [(e.actor, e.action) for e in store.audit_events()] == [
            ("al", "assign"), ("al", "reassign"),
        ]  # fmt: skip
    bad = runner.invoke(main, ["assign", "--db", db, "--reviewers", "a", "--overlap", "2"])
    assert bad.exit_code == 1
    assert "overlap 2: must be between 1 and the number of reviewers (1)" in bad.output


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
