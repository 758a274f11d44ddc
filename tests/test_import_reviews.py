"""Import reviews made elsewhere: plain JSONL, Argilla and Label Studio exports; all or nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.errors import InputError
from reflection.export.curated import export_records
from reflection.export.revisions import revision_records
from reflection.ingest.reviews import import_reviews
from reflection.records import Candidate, Sample


@pytest.fixture
def ds(store):
    d = store.ensure_dataset("d")
    store.add_samples(
        d.id,
        [
            Sample(instruction=f"Question {n}", output=f"Answer  {n}.", position=n, meta={"uid": f"u{n}"})
            for n in range(4)
        ]
        + [Sample(instruction="Same", output="Shared answer", position=4),
           Sample(instruction="Same too", output="Shared answer", position=5)],
    )  # fmt: skip
    ids = store.sample_ids(d.id)
    cand = store.add_candidate(Candidate(sample_id=ids[1], kind="response", output="Better 1."))
    return store, ids, cand


def _write(tmp_path, name, records, jsonl=True):
    path = tmp_path / name
    if jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records))
    return path


def test_plain_jsonl_every_key_kind(ds, tmp_path):
    store, ids, cand = ds
    path = _write(tmp_path, "r.jsonl", [
        {"sample_id": ids[0], "decision": "reject", "reviewer": "ana", "time": "2026-01-01T00:00:01"},
        {"position": 1, "decision": "accept", "version": cand, "reviewer": "bob", "time": "2026-01-01T00:00:02"},
        {"match": {"field": "output", "value": " Answer 2. "}, "decision": "edit",
         "edited": {"output": "Answer two, in full."}, "reviewer": "ana", "time": "2026-01-01T00:00:03"},
        {"content_hash": store.sample(ids[3]).content_hash, "decision": "skip", "reviewer": "cy"},
        {"match": {"field": "uid", "value": "u0"}, "decision": "accept", "reviewer": "bob", "time": "2026-01-01T00:00:04"},
    ])  # fmt: skip
    result = import_reviews(store, "d", path)
    assert (result.format, result.added, result.skipped) == ("plain", 5, 0)
    states = store.states(store.dataset("d").id)
    assert states[ids[0]].status == "accepted" and states[ids[0]].annotator == "bob"  # later time
    assert states[ids[1]].candidate_id == cand
    assert states[ids[2]].status == "edited" and states[ids[3]].status == "skipped"
    # Imported edits are revision pairs like any other; the origin is kept.
    (rev,) = revision_records(store, "d")
    assert rev["revised"]["output"] == "Answer two, in full." and rev["reviewer"] == "ana"
    origins = store.review_origins(r.id for r in store.reviews_for(ids[2]))
    assert list(origins.values())[0]["file"] == "r.jsonl"
    # Again: nothing added. Undo works on imported reviews as on any other.
    again = import_reviews(store, "d", path)
    assert (again.added, again.skipped) == (0, 5)
    store.undo(ids[0], annotator="ana")
    assert store.state(ids[0]).status == "rejected"
    records, _ = export_records(store, "d")
    assert [r["output"] for r in records] == ["Better 1.", "Answer two, in full."]


def test_argilla_v2_and_v1_records(ds, tmp_path):
    store, ids, _ = ds
    v2 = [  # dataset.records.to_json(): Record.to_dict() of each record
        {"id": "r0", "fields": {"instruction": "Question 0", "output": "Answer 0."}, "metadata": {},
         "suggestions": {}, "vectors": {}, "_server_id": "7d1c",
         "responses": {"decision": [{"value": "accept", "user_id": "u-1"},
                                    {"value": "reject", "user_id": "u-2"}]}},
        {"id": "r1", "fields": {"instruction": "Question 1", "output": "Answer 1."},
         "metadata": {"sample_id": ids[1]}, "suggestions": {}, "vectors": {}, "_server_id": "8e2d",
         "responses": {"output": [{"value": "Answer one, corrected.", "user_id": "u-1"}]}},
    ]  # fmt: skip
    result = import_reviews(store, "d", _write(tmp_path, "argilla.json", v2, jsonl=False))
    assert (result.format, result.added) == ("argilla", 3)
    assert {r.annotator for r in store.reviews_for(ids[0])} == {"argilla:u-1", "argilla:u-2"}
    assert store.state(ids[1]).status == "edited"
    v1 = [
        {"fields": {"instruction": "Question 2", "output": "Answer 2."}, "metadata": {},
         "responses": [{"user_id": "u-3", "status": "submitted", "values": {"decision": {"value": "reject"}}},
                       {"user_id": "u-4", "status": "draft", "values": {"decision": {"value": "accept"}}},
                       {"user_id": "u-5", "status": "discarded", "values": {}}]},
    ]  # fmt: skip
    result = import_reviews(store, "d", _write(tmp_path, "argilla1.json", v1, jsonl=False))
    assert result.added == 2  # the draft is not a decision
    assert [r.decision for r in store.reviews_for(ids[2])] == ["reject", "skip"]


def test_label_studio_export(ds, tmp_path):
    store, ids, _ = ds
    tasks = [  # Label Studio "JSON" export: tasks with annotations[].result[]
        {"id": 11, "data": {"instruction": "Question 3", "output": "Answer 3.", "sample_id": ids[3]},
         "annotations": [
             {"id": 101, "completed_by": 1, "was_cancelled": False, "created_at": "2026-02-01T10:00:00Z",
              "updated_at": "2026-02-01T10:05:00Z",
              "result": [{"from_name": "decision", "to_name": "output", "type": "choices",
                          "value": {"choices": ["reject"]}}]},
             {"id": 102, "completed_by": {"id": 2, "email": "eve@example.org"}, "was_cancelled": False,
              "created_at": "2026-02-01T11:00:00Z",
              "result": [{"from_name": "output", "to_name": "output", "type": "textarea",
                          "value": {"text": ["Answer three,", "improved."]}}]},
             {"id": 103, "completed_by": 3, "was_cancelled": True, "result": []},
         ], "predictions": []},
    ]  # fmt: skip
    result = import_reviews(store, "d", _write(tmp_path, "ls.json", tasks, jsonl=False))
    assert (result.format, result.added) == ("labelstudio", 3)
    reviews = store.reviews_for(ids[3])
    assert [(r.annotator, r.decision) for r in reviews] == [
        ("labelstudio:3", "skip"),  # no time: first
        ("labelstudio:1", "reject"),
        ("labelstudio:eve@example.org", "edit"),
    ]
    assert store.candidate(reviews[2].candidate_id).output == "Answer three,\nimproved."


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"sample_id": 999, "decision": "accept", "reviewer": "a"}, "no sample with id 999"),
        ({"position": 1, "decision": "maybe", "reviewer": "a"}, "unknown decision 'maybe'"),
        ({"position": 1, "decision": "accept"}, "no reviewer"),
        ({"position": 1, "sample_id": 2, "decision": "accept", "reviewer": "a"}, "exactly one of"),
        ({"decision": "accept", "reviewer": "a"}, "exactly one of"),
        ({"match": {"field": "output", "value": "Shared answer"}, "decision": "accept", "reviewer": "a"},
         "2 samples whose 'output' is 'Shared answer'"),
        ({"match": {"field": "output", "value": "nope"}, "decision": "accept", "reviewer": "a"},
         "no sample whose 'output' is 'nope'"),
        ({"position": 0, "decision": "accept", "version": "CAND", "reviewer": "a"}, "is not a version of sample"),
        ({"position": 2, "decision": "edit", "edited": {"output": "Answer  2.\n"}, "reviewer": "a"},
         "the same as the version it edits"),
        ({"position": 2, "decision": "edit", "edited": {"output": ""}, "reviewer": "a"}, "needs an instruction and an output"),
        ({"position": 2, "decision": "reject", "edited": {"output": "x"}, "reviewer": "a"}, "edited text given"),
        ({"position": 2, "decision": "accept", "version": "v2", "reviewer": "a"}, "must be \"original\" or a candidate id"),
    ],
)  # fmt: skip
def test_every_mismatch_names_file_and_record_and_writes_nothing(ds, tmp_path, record, message):
    store, ids, cand = ds
    if record.get("version") == "CAND":
        record["version"] = cand  # a candidate of sample 1, not of sample 0
    good = {"position": 3, "decision": "accept", "reviewer": "a"}
    path = _write(tmp_path, "bad.jsonl", [good, record])
    with pytest.raises(InputError) as caught:
        import_reviews(store, "d", path)
    assert str(caught.value).startswith(f"{path}, line 2: ") and message in str(caught.value)
    assert store.scalar("SELECT count(*) FROM reviews") == 0
    assert store.scalar("SELECT count(*) FROM candidates WHERE kind = 'edit'") == 0


def test_unknown_shape_and_cli(ds, tmp_path):
    store, ids, _ = ds
    with pytest.raises(InputError, match="not a review record"):
        import_reviews(store, "d", _write(tmp_path, "x.jsonl", [{"instruction": "q"}]))
    path = _write(tmp_path, "r.jsonl", [{"position": 0, "decision": "reject"}])
    run = CliRunner().invoke(
        main, ["import-reviews", str(path), "--db", str(store.path), "--reviewer", "zoe"]
    )
    assert run.exit_code == 0, run.output
    assert "Imported 1 reviews" in run.output and store.state(ids[0]).annotator == "zoe"


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
