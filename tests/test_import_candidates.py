"""Importing reflections made elsewhere: the four shapes on files built from the real Alpaca
data, every mismatch error (with nothing written), provenance, re-imports, and the review
page's view of what was imported."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import load_alpaca

from reflection import InputError, ReflectionError, Store, diff
from reflection.cli import main
from reflection.ingest.adopt import detect_shape, import_candidates, import_candidates_bytes
from reflection.ingest.datasets import import_dataset
from reflection.review import queue as review

pytestmark = pytest.mark.both_backends

N = len(load_alpaca())  # the real pairs of tests/data
NEW_KEYS = ("new_instruct", "new_input", "new_answer")


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def better(output: str) -> str:
    return output + " In short, this answer now explains its reasoning step by step."


def seed_instruction_file(records) -> list[dict]:
    """The seed's intermediate file for instruction reflection (input stripped, as it does)."""
    return [
        {
            "instruction": r["instruction"],
            "output": r["output"],
            "input": r["input"].strip(),
            "new_instruct": f"{r['instruction']} Justify each step and give an example.",
            "new_answer": better(r["output"]),
            "new_input": "",
        }
        for r in records
    ]


def counts(store: Store) -> tuple[int, int, int, int]:
    return (
        store.count_samples(),
        store.count_candidates(),
        store.scalar("SELECT count(*) FROM scores"),
        store.scalar("SELECT count(*) FROM runs"),
    )


@pytest.fixture
def originals(store, alpaca_records, tmp_path):
    """The Alpaca pairs imported as dataset `alpaca`."""
    path = write_json(tmp_path / "alpaca.json", alpaca_records)
    import_dataset(store, path, dataset="alpaca")
    return store.dataset("alpaca")


# --- paired records --------------------------------------------------------------------------


def test_paired_seed_file_adds_originals_and_instruction_candidates(
    store, alpaca_records, tmp_path
):
    path = write_json(tmp_path / "reflected.json", seed_instruction_file(alpaca_records))
    result = import_candidates(store, path, dataset="alpaca", model="gpt-3.5-turbo")
    assert (result.shape, result.kind, result.match) == ("paired", "instruction", "hash")
    assert (result.samples_added, result.candidates_added, result.unchanged) == (N, N, 0)
    assert result.statuses == {"ok": N}
    ds = store.dataset("alpaca")
    ids = store.sample_ids(ds.id)
    for index in (0, N // 2, N - 1):
        record = alpaca_records[index]
        sample = store.sample(ids[index])
        assert (sample.instruction, sample.output, sample.position) == (
            record["instruction"],
            record["output"],
            index,
        )
        [candidate] = store.candidates_for(sample.id)
        assert candidate.kind == "instruction"
        assert candidate.instruction.endswith("Justify each step and give an example.")
        assert (candidate.input, candidate.output) == ("", better(record["output"]))
        assert candidate.model == "gpt-3.5-turbo"
        assert candidate.origin["file"] == str(path)
        assert candidate.origin["record"] == index + 1
        assert candidate.origin["model"] == "gpt-3.5-turbo"
        assert candidate.run_id == result.run_id
    run = store.get_run(result.run_id)
    assert run.kind == "import-candidates" and run.counters["candidates_added"] == N


def test_importing_the_same_file_again_adds_nothing(store, alpaca_records, tmp_path):
    path = write_json(tmp_path / "reflected.json", seed_instruction_file(alpaca_records[:200]))
    import_candidates(store, path, dataset="alpaca")
    before = counts(store)
    again = import_candidates(store, path, dataset="alpaca")
    assert (again.samples_added, again.candidates_added, again.already_imported) == (0, 0, 200)
    assert counts(store)[:3] == before[:3]


def test_paired_matches_originals_already_imported_despite_stripped_input(
    store, originals, alpaca_records, tmp_path
):
    with_input = [i for i, r in enumerate(alpaca_records) if r["input"]][:50]
    records = seed_instruction_file([alpaca_records[i] for i in with_input])
    for record in records:
        record["input"] = "  " + record["input"] + "\n"  # whitespace never decides a match
    result = import_candidates(store, write_json(tmp_path / "r.json", records), dataset="alpaca")
    assert (result.samples_added, result.candidates_added) == (0, 50)
    ids = store.sample_ids(originals.id)
    for i in with_input:
        assert len(store.candidates_for(ids[i])) == 1


def test_paired_response_file_with_better_answer_keeps_instruction_and_input(
    store, originals, alpaca_records, tmp_path
):
    records = [{**r, "better_answer": better(r["output"])} for r in alpaca_records if r["input"]][
        :30
    ]
    result = import_candidates(store, write_json(tmp_path / "resp.json", records))
    assert (result.kind, result.dataset, result.candidates_added) == ("response", "alpaca", 30)
    candidate = store.candidates_for(store.sample_ids(originals.id)[0] + 0)
    samples = {s.instruction: s for s in store.samples(originals.id)}
    for record in records:
        sample = samples[record["instruction"]]
        [candidate] = store.candidates_for(sample.id)
        assert (candidate.instruction, candidate.input) == (sample.instruction, sample.input)
        assert candidate.output == better(sample.output)


def test_field_mapping_reads_other_names_from_csv(store, alpaca_records, tmp_path):
    path = tmp_path / "pairs.csv"
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "context", "answer", "rewritten_answer", "notes"])
        for r in alpaca_records[:40]:
            writer.writerow([r["instruction"], r["input"], r["output"], better(r["output"]), "x"])
    fields = {"instruction": "prompt", "input": "context", "output": "answer"}
    fields["new_output"] = "rewritten_answer"
    fields["critique"] = "notes"
    result = import_candidates(store, path, dataset="csv", fields=fields, shape="paired")
    assert (result.samples_added, result.candidates_added, result.kind) == (40, 40, "response")
    sample = next(store.samples(store.dataset("csv").id))
    [candidate] = store.candidates_for(sample.id)
    assert candidate.output == better(sample.output) and candidate.critique == "x"
    assert candidate.origin["line"] == 2  # the CSV line under the header


def test_unchanged_records_make_no_candidate(store, alpaca_records, tmp_path):
    records = seed_instruction_file(alpaca_records[:10])
    for record in records[:4]:  # the seed falls back to the original when parsing fails
        record["new_instruct"], record["new_answer"] = record["instruction"], record["output"]
        record["new_input"] = record["input"]
    result = import_candidates(store, write_json(tmp_path / "r.json", records), dataset="d")
    assert (result.candidates_added, result.unchanged, result.samples_added) == (6, 4, 10)


@pytest.mark.parametrize(
    ("change", "problem", "record"),
    [
        (lambda rs: [rs[6].pop(k) for k in NEW_KEYS], "no new version", 7),
        (lambda rs: rs[3].update(new_answer=["a", 1]), "must be text", 4),
        (lambda rs: rs[9].pop("output"), "missing field 'output'", 10),
        (lambda rs: rs.__setitem__(2, "plain text"), "expected an object", 3),
    ],
)
def test_paired_malformed_records_name_the_record_and_write_nothing(
    store, alpaca_records, tmp_path, change, problem, record
):
    records = seed_instruction_file(alpaca_records[:20])
    change(records)
    path = write_json(tmp_path / "bad.json", records)
    before = counts(store)
    with pytest.raises(InputError) as info:
        import_candidates(store, path, dataset="alpaca", shape="paired")
    assert problem in info.value.problem and info.value.record == record
    assert str(path) in str(info.value)
    assert counts(store) == before


def test_paired_by_position_rejects_a_record_whose_original_differs(
    store, originals, alpaca_records, tmp_path
):
    records = seed_instruction_file(alpaca_records)
    records[10]["output"] = "A different answer than the one imported."
    before = counts(store)
    with pytest.raises(InputError, match="record 11: its original differs from sample"):
        import_candidates(store, write_json(tmp_path / "r.json", records), match="position")
    assert counts(store) == before


def test_paired_by_field_adds_unknown_ids_and_rejects_duplicates(store, alpaca_records, tmp_path):
    records = [
        {"id": f"a{i}", **r} for i, r in enumerate(seed_instruction_file(alpaca_records[:30]))
    ]
    path = write_json(tmp_path / "ids.json", records)
    result = import_candidates(store, path, dataset="ids", match="field:id")
    assert (result.samples_added, result.candidates_added) == (30, 30)
    assert next(store.samples(store.dataset("ids").id)).meta == {"id": "a0"}
    records[12]["id"] = "a3"
    before = counts(store)
    with pytest.raises(InputError, match=r"record 13: duplicate id 'a3' \(also record 4\)"):
        import_candidates(store, write_json(tmp_path / "dup.json", records), match="field:id")
    assert counts(store) == before


# --- a second, aligned dataset -----------------------------------------------------------------


def recycled(records, *, instruction=False) -> list[dict]:
    out = copy.deepcopy(records)
    for r in out:
        r["output"] = better(r["output"])
        if instruction:
            r["instruction"] = "In detail: " + r["instruction"]
    return out


def test_aligned_by_position_from_jsonl(store, originals, alpaca_records, tmp_path):
    path = write_jsonl(tmp_path / "recycled.jsonl", recycled(alpaca_records))
    result = import_candidates(store, path, model="gpt-4")
    assert (result.shape, result.match, result.kind) == ("aligned", "position", "response")
    assert (result.candidates_added, result.samples_added) == (N, 0)
    ids = store.sample_ids(originals.id)
    for index in (0, N // 3, N - 1):
        [candidate] = store.candidates_for(ids[index])
        assert candidate.output == better(alpaca_records[index]["output"])
        assert candidate.origin["line"] == index + 1 and candidate.origin["record"] == index + 1
        assert candidate.model == "gpt-4"


def test_aligned_sharegpt_with_new_instructions_is_instruction_kind(
    store, originals, alpaca_records, tmp_path
):
    chats = [
        {
            "conversations": [
                {"from": "human", "value": r["instruction"]},
                {"from": "gpt", "value": r["output"]},
            ]
        }
        for r in recycled(alpaca_records, instruction=True)
    ]
    result = import_candidates(store, write_json(tmp_path / "sharegpt.json", chats))
    assert (result.kind, result.candidates_added) == ("instruction", N)
    ids = store.sample_ids(originals.id)
    [candidate] = store.candidates_for(ids[5])
    assert candidate.instruction == "In detail: " + alpaca_records[5]["instruction"]


def test_aligned_by_id_field_matches_a_shuffled_subset(store, alpaca_records, tmp_path):
    with_ids = [{"uid": 1000 + i, **r} for i, r in enumerate(alpaca_records)]
    import_dataset(store, write_json(tmp_path / "orig.json", with_ids), dataset="alpaca")
    half = N // 2
    subset = recycled(with_ids[:half])
    random.Random(3).shuffle(subset)
    path = write_json(tmp_path / "subset.json", subset)
    result = import_candidates(store, path, match="field:uid")
    assert result.candidates_added == half
    for sample in store.samples(store.dataset("alpaca").id):
        candidates = store.candidates_for(sample.id)
        if sample.meta["uid"] < 1000 + half:
            assert [c.output for c in candidates] == [better(sample.output)]
        else:
            assert candidates == []


def test_aligned_splits_of_a_datasets_folder(store, alpaca_records, tmp_path):
    """A DatasetDict folder: --split picks the split, and two splits are two sources (their
    record numbers overlap, and neither may pass for the other already imported)."""
    datasets = pytest.importorskip("datasets")
    with_ids = [{"uid": 1000 + i, **r} for i, r in enumerate(alpaca_records[:300])]
    import_dataset(store, write_json(tmp_path / "orig.json", with_ids), dataset="alpaca")
    folder = tmp_path / "recycled_hf"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(recycled(with_ids[:200])),
            "test": datasets.Dataset.from_list(recycled(with_ids[200:], instruction=True)),
        }
    ).save_to_disk(str(folder))

    test = import_candidates(store, folder, match="field:uid", split="test")
    assert (test.shape, test.kind, test.candidates_added) == ("aligned", "instruction", 100)
    train = import_candidates(store, folder, match="field:uid", split="train")
    assert (train.kind, train.candidates_added, train.already_imported) == ("response", 200, 0)
    again = import_candidates(store, folder, match="field:uid")  # the default split: train
    assert (again.candidates_added, again.already_imported) == (0, 200)
    ds = store.dataset("alpaca").id
    by_uid = {s.meta["uid"]: s for s in store.samples(ds)}
    [candidate] = store.candidates_for(by_uid[1250].id)
    assert candidate.instruction == "In detail: " + with_ids[250]["instruction"]
    assert candidate.origin["split"] == "test" and candidate.origin["record"] == 51

    with pytest.raises(InputError, match="choose a split with --split: train, test"):
        import_candidates(store, folder, match="field:uid", split="validation")
    flat = write_json(tmp_path / "flat.json", recycled(with_ids[:10]))
    with pytest.raises(InputError, match=r"flat\.json.*--split applies to a Hugging Face"):
        import_candidates(store, flat, split="train")
    result = CliRunner().invoke(
        main,
        ["import-candidates", str(folder), "--db", str(store.path), "--match", "field:uid",
         "--split", "test"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert store.count_candidates() == 300  # the CLI's re-import of test added nothing


def test_aligned_by_hash_matches_response_reflections_by_their_prompt(
    store, originals, alpaca_records, tmp_path
):
    subset = recycled(alpaca_records[100:150])
    result = import_candidates(store, write_json(tmp_path / "s.json", subset), match="hash")
    assert (result.candidates_added, result.kind) == (50, "response")


@pytest.mark.parametrize(
    ("build", "match", "message"),
    [
        (lambda rs: rs[:-1], "position", f"{N - 1:,} records but the dataset has {N:,} samples"),
        (lambda rs: [*rs, rs[0]], "position", f"{N + 1:,} records but the dataset has {N:,}"),
        (
            lambda rs: [dict(r, uid=i) for i, r in enumerate(rs)][:5] + [dict(rs[5], uid=3)],
            "field:uid",
            "record 6: duplicate id '3' (also record 4)",
        ),
        (
            lambda rs: [dict(rs[0], uid=99999)],
            "field:uid",
            "record 1: id '99999' has no sample in the dataset",
        ),
        (lambda rs: [dict(rs[0])], "field:uid", "record 1: no usable id in field 'uid'"),
        (
            lambda rs: [dict(r, instruction="Changed: " + r["instruction"]) for r in rs[:3]],
            "hash",
            "record 1: no sample has this instruction and input",
        ),
        (lambda rs: [rs[7], rs[7]], "hash", "record 2: matches sample"),
    ],
)
def test_aligned_mismatches_are_errors_with_nothing_written(
    store, alpaca_records, tmp_path, build, match, message
):
    with_ids = [{"uid": i, **r} for i, r in enumerate(alpaca_records)]
    import_dataset(store, write_json(tmp_path / "orig.json", with_ids), dataset="alpaca")
    records = [{k: v for k, v in r.items() if k != "uid"} for r in recycled(alpaca_records)]
    path = write_json(tmp_path / "recycled.json", build(records))
    before = counts(store)
    with pytest.raises(InputError) as info:
        import_candidates(store, path, match=match)
    assert message in str(info.value) and str(path) in str(info.value)
    assert counts(store) == before


def test_position_is_ambiguous_when_two_files_went_into_one_dataset(
    store, alpaca_records, tmp_path
):
    import_dataset(store, write_json(tmp_path / "a.json", alpaca_records[:5]), dataset="two")
    import_dataset(store, write_json(tmp_path / "b.json", alpaca_records[5:10]), dataset="two")
    path = write_json(tmp_path / "r.json", recycled(alpaca_records[:10]))
    with pytest.raises(InputError, match="record 1: matches 2 samples"):
        import_candidates(store, path, match="position")


def test_a_new_dataset_needs_its_originals_first(store, alpaca_records, tmp_path):
    path = write_json(tmp_path / "r.json", recycled(alpaca_records[:3]))
    with pytest.raises(ReflectionError, match="no datasets yet"):
        import_candidates(store, path)


# --- raw oracle text -----------------------------------------------------------------------------


def reply(record, i: int) -> str:
    if i % 10 == 3:
        return "I am sorry, I cannot help with that."  # unparsable
    if i % 10 == 7:
        return "[Critique]\nThe answer lacks detail.\n[End]\n"  # critique only
    return (
        f"[Critique]\nThe answer lacks detail.\n[End]\n[Better Answer]\n{better(record['output'])}"
        "\n[End]"
    )


def test_raw_replies_are_parsed_and_failures_kept(store, originals, alpaca_records, tmp_path):
    replies = [reply(r, i) for i, r in enumerate(alpaca_records)]
    path = write_json(tmp_path / "raw.json", replies)
    result = import_candidates(store, path, model="smollm2")
    assert (result.shape, result.kind, result.candidates_added) == ("raw", "response", N)
    failed = sum(1 for i in range(N) if i % 10 in (3, 7))
    assert result.statuses == {"ok": N - failed, "failed": failed}
    ids = store.sample_ids(originals.id)
    [ok] = store.candidates_for(ids[0])
    assert ok.status == "ok" and ok.output == better(alpaca_records[0]["output"])
    assert ok.critique == "The answer lacks detail." and ok.raw == replies[0]
    assert ok.instruction == alpaca_records[0]["instruction"]
    [bad] = store.candidates_for(ids[3])
    assert (bad.status, bad.raw, bad.output) == ("failed", replies[3], "")
    assert "Better Answer" in bad.error
    assert bad.origin["model"] == "smollm2" and bad.model == "smollm2"


def test_raw_instruction_replies_in_jsonl_matched_by_id(store, alpaca_records, tmp_path):
    with_ids = [{"uid": i, **r} for i, r in enumerate(alpaca_records[:60])]
    import_dataset(store, write_json(tmp_path / "orig.json", with_ids), dataset="alpaca")
    lines = [
        {
            "uid": i,
            "raw": f"[Critique]\nVague.\n[End]\n[New Instruction]\nExplain {i} in depth.\n[End]\n"
            f"[New Input]\nNone\n[End]\n[New Answer]\nAnswer {i}.\n[End]",
        }
        for i in reversed(range(60))
    ]
    result = import_candidates(store, write_jsonl(tmp_path / "raw.jsonl", lines), match="field:uid")
    assert (result.kind, result.statuses) == ("instruction", {"ok": 60})
    for sample in store.samples(store.dataset("alpaca").id):
        [candidate] = store.candidates_for(sample.id)
        uid = sample.meta["uid"]
        assert (candidate.instruction, candidate.input) == (f"Explain {uid} in depth.", "")
        assert candidate.output == f"Answer {uid}."


def test_raw_mismatches(store, originals, alpaca_records, tmp_path):
    replies = [reply(r, i) for i, r in enumerate(alpaca_records)]
    before = counts(store)
    with pytest.raises(InputError, match=f"{N + 1:,} records but the dataset has {N:,}"):
        import_candidates(store, write_json(tmp_path / "a.json", [*replies, "extra"]))
    with pytest.raises(InputError, match="carry no original to match by hash"):
        import_candidates(store, write_json(tmp_path / "b.json", replies), match="hash")
    with pytest.raises(InputError, match="record 5: expected an object, got int"):
        import_candidates(store, write_json(tmp_path / "c.json", [*replies[:4], 5, *replies[5:]]))
    assert counts(store) == before


# --- model-vs-model pairs ------------------------------------------------------------------------


def cherry_file(records, **meta) -> dict:
    """Cherry LLM's evaluation file: Meta_Info plus Answer1/Answer2 with both review orders."""
    data = []
    for i, r in enumerate(records):
        data.append(
            {
                "instruction": r["instruction"],
                "Answer1": r["output"],
                "Answer2": better(r["output"]),
                "review": f"{6 + i % 3} 8\nAssistant 2 is more detailed.",
                "scores": str([6.0 + i % 3, 8.0]),
                "review_reverse": "9 5\nThe first answer is better.",
                "scores_reverse": "[9.0, 5.0]",
            }
        )
    return {"Meta_Info": {"dataset_name": "sinstruct", **meta}, "data": data}


def test_pairs_with_judge_scores_become_original_candidate_and_scores(
    store, alpaca_records, tmp_path
):
    wrapped = cherry_file(alpaca_records[:100], fname1="cherry-7b", fname2="alpaca-7b")
    path = write_json(tmp_path / "sinstruct_wrap_reviews_gpt4.json", wrapped)
    result = import_candidates(store, path, dataset="vs", judge="gpt-4")
    assert (result.shape, result.kind, result.match) == ("pairs", "other", "hash")
    assert (result.samples_added, result.candidates_added, result.scores) == (100, 100, 200)
    for index, sample in enumerate(store.samples(store.dataset("vs").id)):
        assert sample.output == alpaca_records[index]["output"]
        [candidate] = store.candidates_for(sample.id)
        assert candidate.output == better(sample.output) and candidate.model == "alpaca-7b"
        assert candidate.origin["original_model"] == "cherry-7b"
        scores = {s.candidate_id: s for s in store.scores_for(sample.id)}
        # Forward [a, 8]; reverse shows Answer2 first: [9 for Answer2, 5 for Answer1].
        assert scores[None].value == pytest.approx((6.0 + index % 3 + 5.0) / 2)
        assert scores[candidate.id].value == pytest.approx((8.0 + 9.0) / 2)
        assert scores[None].scorer == "gpt-4" and scores[None].metric == "judge"
        assert scores[None].detail["review"].startswith(f"{6 + index % 3} 8")


def test_pairs_judge_failures_are_counted_and_malformed_scores_are_errors(
    store, alpaca_records, tmp_path
):
    wrapped = cherry_file(alpaca_records[:10])
    for item in wrapped["data"]:
        del item["scores_reverse"], item["review_reverse"]
    wrapped["data"][4]["scores"] = "[-1, -1]"  # Cherry LLM's mark for an unparsed review
    result = import_candidates(store, write_json(tmp_path / "w.json", wrapped), dataset="vs")
    assert (result.candidates_added, result.scores, result.judge_unparsed) == (10, 18, 1)
    wrapped["data"][6]["scores"] = "eight and seven"
    before = counts(store)
    with pytest.raises(InputError, match="record 7: field 'scores' must hold two scores"):
        import_candidates(store, write_json(tmp_path / "x.json", wrapped), dataset="vs")
    del wrapped["data"][6]["Answer2"]
    with pytest.raises(InputError, match="record 7: missing field 'Answer2' or 'answer2'"):
        import_candidates(store, write_json(tmp_path / "y.json", wrapped), dataset="vs")
    assert counts(store) == before


def test_pairs_with_text_prompt_in_jsonl(store, alpaca_records, tmp_path):
    lines = [
        {"text": r["instruction"], "Answer1": "A.", "Answer2": "B."} for r in alpaca_records[:5]
    ]
    result = import_candidates(store, write_jsonl(tmp_path / "vicuna.jsonl", lines), dataset="v")
    assert (result.shape, result.candidates_added, result.scores) == ("pairs", 5, 0)


# --- uploads, CLI and the review page ------------------------------------------------------------


def test_upload_errors_name_the_uploaded_file(store, alpaca_records):
    records = seed_instruction_file(alpaca_records[:5])
    records[2]["new_answer"] = 42
    data = json.dumps(records).encode()
    with pytest.raises(InputError, match=r"^my_reflections\.json, record 3: field 'new_answer'"):
        import_candidates_bytes(store, data, "my_reflections.json", dataset="u")
    records[2]["new_answer"] = "fine"
    result = import_candidates_bytes(store, json.dumps(records).encode(), "my_reflections.json")
    candidate = store.candidates_for(next(store.samples(store.dataset("my_reflections").id)).id)
    assert result.candidates_added == 5 and candidate[0].origin["file"] == "my_reflections.json"


def test_cli_imports_and_reports_errors_in_one_line(tmp_path, alpaca_records):
    db = tmp_path / "cli.db"
    path = write_json(tmp_path / "r.json", seed_instruction_file(alpaca_records[:25]))
    runner = CliRunner()
    ok = runner.invoke(main, ["import-candidates", str(path), "--db", str(db), "--model", "m"])
    assert ok.exit_code == 0, ok.output
    assert "25 candidates added; 25 originals added" in ok.output
    again = runner.invoke(main, ["import-candidates", str(path), "--db", str(db)])
    assert "0 candidates added; 25 already imported" in again.output
    bad = runner.invoke(
        main, ["import-candidates", str(path), "--db", str(db), "--field", "nonsense=x"]
    )
    assert bad.exit_code == 2 and "expected FIELD=NAME" in bad.output
    broken = write_json(tmp_path / "b.json", [{"instruction": "x", "output": "y", "new_answer": 1}])
    failed = runner.invoke(main, ["import-candidates", str(broken), "--db", str(db)])
    assert failed.exit_code == 1
    assert failed.output.strip() == (
        f"Error: {broken}, record 1: field 'new_answer' must be text, not int"
    )


def test_imported_candidates_show_in_the_review_library_with_diffs(
    store, originals, alpaca_records, tmp_path
):
    import_candidates(store, write_jsonl(tmp_path / "r.jsonl", recycled(alpaca_records)))
    sample_id = store.sample_ids(originals.id)[42]
    item = review.load_item(store, sample_id)
    shown = review.default_candidate(item)
    assert shown is not None and shown.kind == "response"
    ops = diff.word_diff(item.sample.output, shown.output)
    inserted = "".join(text for op, text in ops if op == diff.INSERT)
    assert "step by step" in inserted and not any(op == diff.DELETE for op, _ in ops)
    assert "<ins" in diff.inline_html(ops)


def test_imported_candidates_show_on_the_review_page(tmp_path, alpaca_records, monkeypatch):
    testing = pytest.importorskip("streamlit.testing.v1")
    page = Path(__file__).resolve().parent.parent / "pages" / "1_Review.py"
    if not page.exists():
        pytest.skip("the Review page is not there yet")
    db = tmp_path / "review.db"
    with Store(db) as store:
        import_candidates(
            store,
            write_json(tmp_path / "r.json", seed_instruction_file(alpaca_records[:3])),
            dataset="alpaca",
        )
    monkeypatch.setenv("REFLECTION_DB", str(db))
    at = testing.AppTest.from_file(str(page), default_timeout=60)
    at.session_state["annotator"] = "ann"
    at.run()
    assert not at.exception, at.exception
    html = "\n".join(h.proto.body for h in at.get("html"))
    assert "Justify" in html and "<ins" in html


@pytest.mark.parametrize(
    ("record", "shape"),
    [
        ("[Better Answer] x [End]", "raw"),
        ({"raw": "text", "uid": 3}, "raw"),
        ({"instruction": "i", "output": "o", "new_instruct": "n"}, "paired"),
        ({"instruction": "i", "output": "o", "better_answer": "b"}, "paired"),
        ({"text": "q", "Answer1": "a", "Answer2": "b"}, "pairs"),
        ({"instruction": "i", "output": "o"}, "aligned"),
        ({"conversations": [], "raw": "kept as data"}, "aligned"),
        ({"messages": []}, "aligned"),
    ],
)
def test_detect_shape(record, shape):
    assert detect_shape(record) == shape


def test_detect_shape_follows_a_field_mapping():
    assert detect_shape({"q": "x", "a": "y", "b": "z"}, {"answer1": "a", "answer2": "b"}) == "pairs"


def test_raw_jsonl_of_strings_and_bad_bytes(store, originals, alpaca_records, tmp_path):
    replies = [reply(r, i) for i, r in enumerate(alpaca_records)]
    result = import_candidates(store, write_jsonl(tmp_path / "raw.jsonl", replies))
    assert (result.shape, result.candidates_added) == ("raw", N)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b'"fine"\n"also fine"\n"caf\xe9"\n')
    with pytest.raises(InputError, match="line 3: not valid UTF-8"):
        import_candidates(store, broken)


def test_paired_parquet_file(store, alpaca_records, tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{**r, "better_answer": better(r["output"])} for r in alpaca_records[:50]]
    pq.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "p.parquet")
    result = import_candidates(store, tmp_path / "p.parquet", dataset="pq")
    assert (result.shape, result.kind, result.candidates_added) == ("paired", "response", 50)


def test_a_position_with_no_sample_is_an_error(store, alpaca_records, tmp_path):
    # The original file repeats its second record as its fifth: import skips the repeat, so
    # no sample sits at position 4, and a 5-record file cannot be aligned by position.
    original = [*alpaca_records[:4], alpaca_records[1], alpaca_records[4]]
    import_dataset(store, write_json(tmp_path / "o.json", original), dataset="gap")
    assert [s.position for s in store.samples(store.dataset("gap").id)] == [0, 1, 2, 3, 5]
    path = write_json(tmp_path / "r.json", recycled(alpaca_records[:5]))
    with pytest.raises(InputError, match=r"r\.json, record 5: no sample at position 4"):
        import_candidates(store, path, match="position")
    assert store.count_candidates() == 0


def test_an_id_held_by_two_samples_is_ambiguous(store, alpaca_records, tmp_path):
    originals = [{"uid": i % 3, **r} for i, r in enumerate(alpaca_records[:6])]
    import_dataset(store, write_json(tmp_path / "o.json", originals), dataset="dup")
    path = write_json(tmp_path / "r.json", [{"uid": 1, **recycled(alpaca_records[:1])[0]}])
    with pytest.raises(InputError, match=r"record 1: matches 2 samples \(2, 5\)"):
        import_candidates(store, path, match="field:uid")


def test_judge_scores_show_as_scores_in_the_review_library(store, alpaca_records, tmp_path):
    wrapped = cherry_file(alpaca_records[:3], fname1="model-a", fname2="model-b")
    import_candidates(store, write_json(tmp_path / "w.json", wrapped), dataset="vs")
    sample_id = store.sample_ids(store.dataset("vs").id)[0]
    item = review.load_item(store, sample_id)
    shown = review.default_candidate(item)
    assert review.candidate_label(shown) == f"#{shown.id} other (ok)"
    [row] = review.score_rows(item, shown)
    assert row == {"metric": "judge", "original": 5.5, "candidate": 8.5, "change": 3.0}


def test_norm_fast_path_equals_the_line_by_line_rule():
    """`norm` skips rebuilding text that has nothing to tidy; on any text it equals the rule:
    CRLF as LF, stripped, no line's trailing whitespace (unicode spaces, vertical tabs and
    the like included)."""
    import random

    from reflection.ingest.adopt_files import norm

    def rule(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n"))

    rng = random.Random(14)
    pieces = ["a", "b", " ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u2028", "\xa0", "\x85"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    assert [norm(t) for t in texts] == [rule(t) for t in texts]
    assert norm("  a \nb\r\n c ") == "a\nb\n c"


def test_same_text_equals_comparing_the_normalised_texts():
    """`same_text` rejects texts whose first or last character other than whitespace differ
    without normalising them; on any pair it answers as norm(a) == norm(b)."""
    import random

    from reflection.ingest.adopt_files import norm, same_text

    rng = random.Random(15)
    pieces = ["a", "b", " ", "\t", "\n", "\r", "\r\n", "\x0b", "\x1c", "\u2028", "\xa0", "\x85"]
    pairs = []
    for _ in range(30000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        other = list(text)
        for _ in range(rng.randint(0, 2)):  # a few whitespace or letter changes
            at = rng.randint(0, len(other))
            other.insert(at, rng.choice(pieces))
        pairs.append((text, "".join(other)))
    answers = [same_text(a, b) for a, b in pairs]
    assert answers == [norm(a) == norm(b) for a, b in pairs]
    assert 0.2 < sum(answers) / len(answers) < 0.8  # both answers are well exercised
    assert same_text(" x\r\n y \n", "x\n y") and not same_text("x y.", "x y!")
