"""Round trips for every format on the real Alpaca data, multi-turn chats and extra fields."""

from __future__ import annotations

import json

import pytest

from reflection.errors import InputError
from reflection.export.curated import export_dataset
from reflection.formats import read_dataset
from reflection.ingest.datasets import import_dataset

pytestmark = pytest.mark.both_backends

TABLE_AND_ALPACA = [
    ("alpaca", "out.json"),
    ("alpaca", "out.jsonl"),
    ("csv", "out.csv"),
    ("parquet", "out.parquet"),
    ("hf", "out_hf"),
]


@pytest.fixture
def alpaca_file(tmp_path, alpaca_records):
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(alpaca_records, ensure_ascii=False), encoding="utf-8")
    return path


def _fields(store, dataset):
    return [(s.instruction, s.input, s.output) for s in store.samples(store.dataset(dataset).id)]


@pytest.mark.parametrize(("fmt", "name"), TABLE_AND_ALPACA)
def test_every_alpaca_field_survives_a_round_trip(
    store, tmp_path, alpaca_file, alpaca_records, fmt, name
):
    import_dataset(store, alpaca_file, dataset="src")
    out = tmp_path / name
    result = export_dataset(store, "src", out, fmt, undecided="original")
    assert result.written == len(alpaca_records)
    back = import_dataset(store, out, dataset="back", fmt="hf" if fmt == "hf" else None)
    assert (back.added, back.skipped) == (len(alpaca_records), 0)
    expected = [(r["instruction"], r["input"], r["output"]) for r in alpaca_records]
    assert _fields(store, "back") == expected


@pytest.mark.parametrize(("fmt", "name"), [("sharegpt", "out.json"), ("openai", "out.jsonl")])
def test_chat_round_trip_folds_input_into_the_user_turn(
    store, tmp_path, alpaca_file, alpaca_records, fmt, name
):
    import_dataset(store, alpaca_file, dataset="src")
    out = tmp_path / name
    export_dataset(store, "src", out, fmt, undecided="original")
    back = import_dataset(store, out, dataset="back")
    assert back.format == fmt and back.added == len(alpaca_records)
    expected = [
        (r["instruction"] + ("\n\n" + r["input"] if r["input"] else ""), "", r["output"])
        for r in alpaca_records
    ]
    assert _fields(store, "back") == expected


def test_alpaca_file_comes_back_byte_for_byte(store, tmp_path, alpaca_records):
    source = tmp_path / "alpaca.json"
    source.write_text(
        json.dumps(alpaca_records, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    import_dataset(store, source)
    out = tmp_path / "again.json"
    export_dataset(store, "alpaca", out, undecided="original")
    assert out.read_bytes() == source.read_bytes()


SHAREGPT = [
    {
        "id": "conv-1",
        "conversations": [
            {"from": "human", "value": "What is a prime number?"},
            {"from": "gpt", "value": "A number with exactly two divisors."},
            {"from": "human", "value": "Is 1 prime?"},
            {"from": "gpt", "value": "No."},
        ],
        "system": "Be brief.",
    },
    {
        "conversations": [
            {"from": "system", "value": "You are a tutor."},
            {"from": "human", "value": "Name a prime."},
            {"from": "gpt", "value": "7"},
        ],
        "tags": ["math", "easy"],
    },
]

OPENAI = [
    {
        "messages": [
            {"role": "system", "content": "You answer in French."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Bonjour", "weight": 0},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "Merci", "weight": 1},
        ]
    },
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
]


def test_sharegpt_multi_turn_keeps_history_and_writes_it_back_unchanged(store, tmp_path):
    source = tmp_path / "chats.json"
    source.write_text(json.dumps(SHAREGPT), encoding="utf-8")
    import_dataset(store, source)
    first = next(store.samples(store.dataset("chats").id))
    assert first.instruction == "Is 1 prime?"
    assert first.output == "No."
    assert first.history == [["What is a prime number?", "A number with exactly two divisors."]]
    assert first.system == "Be brief."
    assert first.meta["id"] == "conv-1"
    out = tmp_path / "again.json"
    export_dataset(store, "chats", out, "sharegpt", undecided="original")
    assert json.loads(out.read_text()) == SHAREGPT


def test_openai_messages_keep_system_turn_and_per_message_fields(store, tmp_path):
    source = tmp_path / "ft.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in OPENAI), encoding="utf-8")
    result = import_dataset(store, source)
    assert result.format == "openai"
    out = tmp_path / "again.jsonl"
    export_dataset(store, "ft", out, "openai", undecided="original")
    assert [json.loads(line) for line in out.read_text().splitlines()] == OPENAI


def test_multi_turn_becomes_llama_factory_alpaca(store, tmp_path):
    source = tmp_path / "chats.json"
    source.write_text(json.dumps(SHAREGPT), encoding="utf-8")
    import_dataset(store, source)
    out = tmp_path / "alpaca.json"
    export_dataset(store, "chats", out, "alpaca", undecided="original")
    first = json.loads(out.read_text())[0]
    assert first == {
        "instruction": "Is 1 prime?",
        "input": "",
        "output": "No.",
        "system": "Be brief.",
        "history": [["What is a prime number?", "A number with exactly two divisors."]],
        "id": "conv-1",
    }
    # ...and that Alpaca file reads back into the same conversation.
    samples, fmt = read_dataset(out)
    assert fmt == "alpaca" and samples[0].history == first["history"]


@pytest.mark.parametrize("name", ["extra.json", "extra.jsonl", "extra.parquet"])
def test_unknown_fields_are_kept_and_written_back(store, tmp_path, name):
    records = [
        {"instruction": "a", "input": "", "output": "b", "category": "qa", "score": 3},
        {"instruction": "c", "input": "d", "output": "e", "category": "gen", "score": 5},
    ]
    source = tmp_path / "source.json"
    source.write_text(json.dumps(records), encoding="utf-8")
    import_dataset(store, source, dataset="x")
    out = tmp_path / name
    export_dataset(store, "x", out, undecided="original")
    samples, _ = read_dataset(out)
    assert [s.meta for s in samples] == [
        {"category": "qa", "score": 3},
        {"category": "gen", "score": 5},
    ]


def test_csv_column_mapping_and_history_column(store, tmp_path):
    source = tmp_path / "table.csv"
    source.write_text(
        'prompt,context,response,history\n"Say hi","","Hi!","[[""a"", ""b""]]"\n', encoding="utf-8"
    )
    import_dataset(
        store, source, columns={"instruction": "prompt", "input": "context", "output": "response"}
    )
    sample = next(store.samples(store.dataset("table").id))
    assert (sample.instruction, sample.output, sample.history) == ("Say hi", "Hi!", [["a", "b"]])


def test_hf_file_loading_through_datasets(store, tmp_path, alpaca_records):
    source = tmp_path / "part.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in alpaca_records[:50]), encoding="utf-8")
    result = import_dataset(store, source, fmt="hf")
    assert (result.format, result.added) == ("hf", 50)


def test_hf_dataset_dict_splits_and_errors_name_the_split(store, tmp_path, alpaca_records):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "dd"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(alpaca_records[:10]),
            "test": datasets.Dataset.from_list(alpaca_records[10:15]),
        }
    ).save_to_disk(str(folder))
    assert import_dataset(store, folder, dataset="tr").added == 10  # train by default
    assert import_dataset(store, folder, dataset="te", split="test").added == 5
    bad_folder = tmp_path / "dd_bad"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(alpaca_records[:3]),
            "test": datasets.Dataset.from_list(
                [
                    {"instruction": r["instruction"], "output": r["output"]}
                    for r in alpaca_records[:2]
                ]
                + [{"instruction": None, "output": "x"}]
            ),
        }
    ).save_to_disk(str(bad_folder))
    before = store.count_samples()
    with pytest.raises(InputError) as caught:
        import_dataset(store, bad_folder, dataset="broken", split="test")
    assert str(caught.value).startswith(f"{bad_folder} (split test), record 3: ")
    assert store.count_samples() == before


def test_empty_outputs_are_imported_but_flagged(store, tmp_path):
    source = tmp_path / "thin.jsonl"
    source.write_text(
        '{"instruction": "a", "output": ""}\n{"instruction": "b", "output": "ok"}\n',
        encoding="utf-8",
    )
    result = import_dataset(store, source)
    assert (result.added, result.flagged) == (2, 1)
    flags = [s.flags for s in store.samples(store.dataset("thin").id)]
    assert flags == [["empty_output"], []]
    assert store.stats()["flagged_samples"] == {"empty_output": 1}


def test_reimport_adds_nothing(store, alpaca_file, alpaca_records):
    n = len(alpaca_records)
    first = import_dataset(store, alpaca_file, dataset="a")
    again = import_dataset(store, alpaca_file, dataset="a")
    assert (first.added, again.added, again.skipped) == (n, 0, n)
    assert store.count_samples() == n
