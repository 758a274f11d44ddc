"""Export: decisions and undecided policies, provenance, determinism, atomic writes."""

from __future__ import annotations

import json

import pytest

from reflection.errors import ReflectionError
from reflection.export.curated import export_dataset, export_records
from reflection.formats.writers import write_records
from reflection.records import Candidate, Review, Sample, Suggestion


@pytest.fixture
def curated(store):
    """Five samples: accepted candidate, accepted original, edited, rejected, undecided (+ suggestion)."""
    ds = store.ensure_dataset("d")
    store.add_samples(
        ds.id,
        [Sample(instruction=f"q{n}", output=f"a{n}", position=n, meta={"k": n}) for n in range(5)],
    )
    ids = store.sample_ids(ds.id)
    better = store.add_candidate(Candidate(sample_id=ids[0], kind="response", output="A0 better"))
    edit = store.add_candidate(
        Candidate(sample_id=ids[2], kind="edit", instruction="Q2", output="A2 edited")
    )
    suggested = store.add_candidate(
        Candidate(sample_id=ids[4], kind="instruction", instruction="Q4 new", output="A4 new")
    )
    store.add_reviews(
        [
            Review(sample_id=ids[0], decision="accept", candidate_id=better, annotator="ana"),
            Review(sample_id=ids[1], decision="accept", annotator="bob"),
            Review(sample_id=ids[2], decision="edit", candidate_id=edit, annotator="ana"),
            Review(sample_id=ids[3], decision="reject", annotator="bob"),
        ]
    )
    store.put_suggestions(
        [
            Suggestion(
                sample_id=ids[4], candidate_id=suggested, rule="selective", reason="higher IFD"
            )
        ]
    )
    return store


def _outputs(records):
    return [r["output"] for r in records]


@pytest.mark.parametrize(
    ("policy", "outputs"),
    [
        ("skip", ["A0 better", "a1", "A2 edited"]),
        ("original", ["A0 better", "a1", "A2 edited", "a4"]),
        ("suggested", ["A0 better", "a1", "A2 edited", "A4 new"]),
    ],
)
def test_decisions_and_undecided_policy(curated, policy, outputs):
    records, counts = export_records(curated, "d", undecided=policy)
    assert _outputs(records) == outputs
    assert counts["rejected"] == 1 and counts["written"] == len(outputs)


def test_suggested_falls_back_to_original_without_a_suggestion(curated):
    curated.conn.execute("DELETE FROM suggestions")
    records, counts = export_records(curated, "d", undecided="suggested")
    assert _outputs(records)[-1] == "a4" and counts["undecided-original"] == 1


def test_human_decision_beats_suggestion(curated):
    ids = curated.sample_ids(curated.dataset("d").id)
    curated.put_suggestions(
        [Suggestion(sample_id=ids[3], candidate_id=None, rule="selective", reason="x")]
    )
    records, _ = export_records(curated, "d", undecided="suggested")
    assert "a3" not in _outputs(records)


def test_undo_makes_a_sample_undecided_again(curated):
    ids = curated.sample_ids(curated.dataset("d").id)
    curated.undo(ids[3])
    records, _ = export_records(curated, "d", undecided="original")
    assert "a3" in _outputs(records)


def test_accepted_edit_keeps_instruction_and_meta(curated):
    records, _ = export_records(curated, "d")
    assert records[2] == {"instruction": "Q2", "input": "", "output": "A2 edited", "k": 2}


def test_provenance_is_opt_in_and_complete(curated):
    plain, _ = export_records(curated, "d")
    assert all("provenance" not in r for r in plain)
    records, _ = export_records(curated, "d", provenance=True, undecided="suggested")
    first, last = records[0]["provenance"], records[-1]["provenance"]
    assert first["dataset"] == "d" and first["position"] == 0 and first["version"] == "response"
    assert first["decision"] == "accepted" and first["annotator"] == "ana" and first["decided_at"]
    assert (
        last["decision"] == "suggested"
        and last["rule"] == "selective"
        and last["version"] == "instruction"
    )
    table, _ = export_records(curated, "d", "csv", provenance=True)
    assert table[0]["provenance_annotator"] == "ana"


@pytest.mark.parametrize("name", ["a.json", "a.jsonl", "a.csv", "a.parquet", "chat.json"])
def test_same_state_gives_identical_bytes(curated, tmp_path, name):
    fmt = "sharegpt" if name == "chat.json" else None
    first = export_dataset(
        curated, "d", tmp_path / f"1{name}", fmt, undecided="suggested", provenance=True
    )
    second = export_dataset(
        curated, "d", tmp_path / f"2{name}", fmt, undecided="suggested", provenance=True
    )
    assert first.written == second.written == 4
    assert (tmp_path / f"1{name}").read_bytes() == (tmp_path / f"2{name}").read_bytes()


def test_export_is_recorded_as_a_run(curated, tmp_path):
    result = export_dataset(curated, "d", tmp_path / "x.json")
    run = curated.get_run(result.run_id)
    assert run.kind == "export" and run.counters["written"] == 3 and run.status == "done"


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_records(target, [{"instruction": {1, 2}}], "json")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_unknown_policy(curated):
    with pytest.raises(ReflectionError, match="unknown undecided policy"):
        export_records(curated, "d", undecided="maybe")


def test_limit_previews_without_changing_counts(curated):
    records, counts = export_records(curated, "d", undecided="original", limit=2)
    assert len(records) == 2 and counts["written"] == 4


def test_chat_export_of_candidate(curated, tmp_path):
    export_dataset(curated, "d", tmp_path / "c.jsonl", "openai")
    first = json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])
    assert first["messages"][-1] == {"role": "assistant", "content": "A0 better"}


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
