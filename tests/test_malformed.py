"""A corpus of malformed files: each fails with one message naming the file and the place,
and leaves the database exactly as it was."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reflection.errors import InputError
from reflection.ingest.datasets import import_dataset
from reflection.store.copy import columns, digest, table_names


def _jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _parquet(rows) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


OK = {"instruction": "Add 2 and 2.", "input": "", "output": "4"}
TURN_H = {"from": "human", "value": "hi"}
TURN_G = {"from": "gpt", "value": "hello"}

# (file name, content, extra import arguments, expected message after "<path>")
CORPUS = [
    (
        "broken.json",
        b'[{"instruction": "a", "output": "b"},\n {"instruction": "c"',
        {},
        ", line 2: invalid JSON",
    ),
    (
        "broken.jsonl",
        _jsonl(OK, OK) + b'{"instruction": "x", "output": }\n',
        {},
        ", line 3: invalid JSON",
    ),
    (
        "list_line.jsonl",
        _jsonl(OK) + b"[1, 2]\n",
        {},
        ", line 2: expected a JSON object, got a list",
    ),
    (
        "number_line.jsonl",
        _jsonl(OK) + b"42\n",
        {},
        ", line 2: expected a JSON object, got a number",
    ),
    (
        "string_record.json",
        json.dumps([OK, "oops"]).encode(),
        {},
        ", record 2: expected an object, got text",
    ),
    (
        "no_instruction.json",
        json.dumps([OK, OK, {"output": "b"}]).encode(),
        {},
        ", record 3: missing required field 'instruction'",
    ),
    (
        "no_output.jsonl",
        _jsonl(OK, {"instruction": "a", "input": ""}),
        {},
        ", line 2: missing required field 'output'",
    ),
    (
        "number_output.json",
        json.dumps([{"instruction": "a", "output": 4}]).encode(),
        {},
        ", record 1: field 'output' must be text, not a number",
    ),
    (
        "null_instruction.json",
        json.dumps([OK, {"instruction": None, "output": "b"}]).encode(),
        {},
        ", record 2: field 'instruction' must be text, not null",
    ),
    (
        "list_input.json",
        json.dumps([{"instruction": "a", "input": ["x"], "output": "b"}]).encode(),
        {},
        ", record 1: field 'input' must be text, not a list",
    ),
    (
        "history_text.json",
        json.dumps([{**OK, "history": "earlier"}]).encode(),
        {},
        ", record 1: field 'history' must be a list of [user, assistant] pairs, not text",
    ),
    (
        "history_triple.json",
        json.dumps([{**OK, "history": [["a", "b", "c"]]}]).encode(),
        {},
        ", record 1: history[0] must be a [user, assistant] pair of texts",
    ),
    ("empty.json", b"", {}, ": the file is empty"),
    ("blank.jsonl", b"  \n\n \n", {}, ": the file is empty"),
    ("empty_list.json", b"[]", {}, ": the file holds no records"),
    (
        "latin1.jsonl",
        _jsonl(OK) + '{"instruction": "café", "output": "x"}\n'.encode("latin-1"),
        {},
        ", line 2: not valid UTF-8 (byte 0xe9)",
    ),
    ("notes.txt", b"instruction: hi", {}, ": unknown format (extension '.txt')"),
    (
        "wrapped.json",
        json.dumps({"data": [OK]}).encode(),
        {},
        ", line 1: unknown format: no 'instruction', 'conversations' or 'messages' field (fields: data)",
    ),
    ("scalar.json", b"42", {}, ": expected a JSON list of records, got a number"),
    (
        "mixed.json",
        json.dumps([OK, {"conversations": [TURN_H, TURN_G]}]).encode(),
        {},
        ", record 2: looks like a sharegpt record in an Alpaca file",
    ),
    (
        "conv_text.json",
        json.dumps([{"conversations": "hi"}]).encode(),
        {},
        ", record 1: field 'conversations' must be a list of turns, not text",
    ),
    (
        "bad_role.json",
        json.dumps([{"conversations": [TURN_H, {"from": "bot2", "value": "x"}]}]).encode(),
        {},
        ", record 1: conversations[1] has role 'bot2'",
    ),
    (
        "ends_human.json",
        json.dumps([{"conversations": [TURN_H, TURN_G, TURN_H]}]).encode(),
        {},
        ", record 1: expected alternating user/assistant turns ending with the assistant, got 3 turns",
    ),
    (
        "two_humans.json",
        json.dumps([{"conversations": [TURN_H, TURN_H, TURN_G, TURN_G]}]).encode(),
        {},
        ", record 1: turn 2 is from user; expected assistant",
    ),
    (
        "value_number.json",
        json.dumps([{"conversations": [TURN_H, {"from": "gpt", "value": 7}]}]).encode(),
        {},
        ", record 1: conversations[1].value must be text, not a number",
    ),
    ("no_messages.jsonl", _jsonl({"messages": []}), {}, ", line 1: field 'messages' is empty"),
    (
        "late_system.jsonl",
        _jsonl(
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "system", "content": "b"},
                    {"role": "assistant", "content": "c"},
                ]
            }
        ),
        {},
        ", line 1: a system turn may only come first",
    ),
    (
        "turn_not_object.jsonl",
        _jsonl({"messages": ["hi", "there"]}),
        {},
        ", line 1: messages[0] must be an object, not text",
    ),
    (
        "no_output_column.csv",
        b"instruction,input\nhi,\n",
        {},
        ", line 2: missing required field 'output'",
    ),
    (
        "ragged.csv",
        b"instruction,input,output\na,,b\nc,,d\ne,,f,g\n",
        {},
        ", line 4: 4 fields where the header has 3",
    ),
    (
        "quote.csv",
        b'instruction,input,output\n"a,,b\n',
        {},
        ", line 2: malformed CSV: unexpected end of data",
    ),
    (
        "columns.csv",
        b"prompt,response\nhi,hello\n",
        {},
        ", line 2: unknown format: no 'instruction', 'conversations' or 'messages' field (fields: prompt, response)",
    ),
    ("garbage.parquet", b"PAR1 this is not parquet", {}, ": not a readable Parquet file"),
    (
        "int_output.parquet",
        _parquet([{"instruction": "a", "input": "", "output": 4}]),
        {},
        ", record 1: field 'output' must be text, not a number",
    ),
    ("not_a_dataset", None, {"fmt": "hf"}, ": `datasets` cannot load it"),
    ("missing.json", "absent", {}, ": no such file or directory"),
    ("forced.json", json.dumps([OK]).encode(), {"fmt": "yaml"}, ": unknown format 'yaml'"),
    (
        "sharegpt_forced.json",
        json.dumps([OK]).encode(),
        {"fmt": "sharegpt"},
        ", record 1: missing required field 'conversations'",
    ),
]


def _snapshot(store) -> list[tuple[str, int, str]]:
    """Every table's rows and content digest: any change to any row shows (both backends)."""
    return [(t, *digest(store, t, columns(store, t))) for t in sorted(table_names(store))]


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_malformed_file_names_file_and_place_and_changes_nothing(
    store, tmp_path, name, content, kwargs, message
):
    # A database with something in it already, which must survive untouched.
    seed = tmp_path / "seed.jsonl"
    seed.write_bytes(_jsonl(OK, {"instruction": "b", "output": "c"}))
    import_dataset(store, seed, dataset="target")
    before = _snapshot(store)

    path = tmp_path / name
    if content is None:
        path.mkdir()
        (path / "readme.txt").write_text("not a dataset")
    elif content != "absent":
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        import_dataset(store, path, dataset="target", **kwargs)
    assert str(caught.value).startswith(f"{path}{message}"), str(caught.value)
    assert "\n" not in str(caught.value)
    assert _snapshot(store) == before


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
