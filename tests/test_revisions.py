"""Revision pairs: one record per human edit in force, undone edits left out, loadable shapes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.export.revisions import RevisionFilter, export_revisions, revision_records
from reflection.records import Candidate, Review, Sample


@pytest.fixture
def edited(store):
    """Four samples: edited from a reflection (with critique), edited from the original,
    an edit later undone, a typo fix; plus one plain accept."""
    ds = store.ensure_dataset("d")
    store.add_samples(
        ds.id,
        [
            Sample(instruction=f"Question {n}", output=f"Answer number {n}.", position=n)
            for n in range(5)
        ],
    )
    ids = store.sample_ids(ds.id)
    reflected = store.add_candidate(
        Candidate(
            sample_id=ids[0], kind="response", output="A better answer zero.",
            critique="The answer is too short.",
        )
    )  # fmt: skip

    def edit(sample_id, parent, output, who, when):
        cid = store.add_candidate(
            Candidate(
                sample_id=sample_id, kind="edit", parent_id=parent,
                instruction=f"Question {ids.index(sample_id)}", output=output, annotator=who,
            )
        )  # fmt: skip
        store.add_review(
            Review(
                sample_id=sample_id,
                decision="edit",
                candidate_id=cid,
                annotator=who,
                created_at=when,
            )
        )
        return cid

    edit(
        ids[0],
        reflected,
        "A much better and longer answer zero, with detail.",
        "ana",
        "2026-01-01T10:00:00",
    )
    edit(ids[1], None, "Answer number one, explained step by step.", "bob", "2026-01-02T10:00:00")
    edit(ids[2], None, "Something quite different entirely.", "ana", "2026-01-03T10:00:00")
    store.undo(ids[2], annotator="ana")
    edit(ids[3], None, "Answer numbr 3.", "bob", "2026-01-04T10:00:00")
    store.add_review(Review(sample_id=ids[4], decision="accept", annotator="ana"))
    return store, ids


def test_one_record_per_edit_in_force(edited):
    store, ids = edited
    records = revision_records(store, "d")
    assert [r["sample_id"] for r in records] == [ids[0], ids[1], ids[3]]  # undone and accept out
    first = records[0]
    assert first["original"] == {
        "instruction": "Question 0",
        "input": "",
        "output": "Answer number 0.",
    }
    assert (
        first["base"]["kind"] == "response" and first["base"]["output"] == "A better answer zero."
    )
    assert first["critique"] == "The answer is too short."
    assert first["revised"]["output"] == "A much better and longer answer zero, with detail."
    assert first["reviewer"] == "ana" and first["decided_at"] == "2026-01-01T10:00:00"
    second = records[1]
    assert second["base"] == {"kind": "original", "candidate_id": None, **second["original"]}
    assert second["critique"] == ""
    # "Answer number one, explained step by step." vs "Answer number 1.": 1 deleted, 5 inserted.
    assert second["changes"]["output"] == {"equal": 2, "deleted": 1, "inserted": 5}
    assert second["changes"]["words_changed"] == 6


def test_filters_by_reviewer_time_and_size(edited):
    store, ids = edited

    def picked(**kw):
        return [r["sample_id"] for r in revision_records(store, "d", RevisionFilter(**kw))]

    assert picked(reviewers=("bob",)) == [ids[1], ids[3]]
    assert picked(since="2026-01-02", until="2026-01-03") == [ids[1]]
    assert picked(min_words_changed=3) == [ids[0], ids[1]]  # the typo fix changes 2 words


def test_undo_then_redo_shows_again(edited):
    store, ids = edited
    store.undo(ids[0], annotator="ana")
    assert ids[0] not in [r["sample_id"] for r in revision_records(store, "d")]


def test_export_is_deterministic_and_loads_in_datasets(edited, tmp_path):
    datasets = pytest.importorskip("datasets")
    store, _ = edited
    for shape in ("jsonl", "openai", "sharegpt"):
        a, b = tmp_path / f"a_{shape}.jsonl", tmp_path / f"b_{shape}.jsonl"
        export_revisions(store, "d", a, shape)
        export_revisions(store, "d", b, shape)
        assert a.read_bytes() == b.read_bytes()
        loaded = datasets.load_dataset("json", data_files=str(a), split="train")
        assert len(loaded) == 3
    rows = [json.loads(line) for line in (tmp_path / "a_openai.jsonl").read_text().splitlines()]
    roles = [[m["role"] for m in row["messages"]] for row in rows]
    assert roles == [["system", "user", "assistant"]] * 3
    assert "Answer number 0." in rows[0]["messages"][1]["content"]  # revise the original pair
    assert rows[0]["messages"][2]["content"].endswith(
        "### Response:\nA much better and longer answer zero, with detail."
    )
    share = json.loads((tmp_path / "a_sharegpt.jsonl").read_text().splitlines()[0])
    assert [t["from"] for t in share["conversations"]] == ["human", "gpt"] and share["system"]


def test_chat_shape_renders_through_a_chat_template(edited, tmp_path):
    jinja2 = pytest.importorskip("jinja2")
    store, _ = edited
    export_revisions(store, "d", tmp_path / "r.jsonl", "openai")
    row = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[1])
    # ChatML, as transformers renders it; raises on a role order the template forbids.
    chatml = (
        "{% for m in messages %}{% if loop.index0 == 0 and m['role'] != 'system' %}"
        "{{ raise_exception('system first') }}{% endif %}"
        "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )

    def raise_exception(message):
        raise ValueError(message)

    env = jinja2.Environment()
    env.globals["raise_exception"] = raise_exception
    text = env.from_string(chatml).render(messages=row["messages"])
    assert text.count("<|im_start|>") == 3
    assert "<|im_start|>assistant\n### Instruction:\nQuestion 1" in text


def test_cli_export_revisions(edited, tmp_path):
    store, ids = edited
    out = tmp_path / "rev.jsonl"
    result = CliRunner().invoke(
        main,
        ["export", "--db", store.path, "--out", out, "--format", "revisions", "--reviewer", "bob",
         "--min-words-changed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Wrote 1 revision pairs" in result.output
    assert [json.loads(x)["sample_id"] for x in out.read_text().splitlines()] == [ids[1]]


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
