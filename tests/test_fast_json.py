"""Import's JSON goes through orjson where it reads and hashes exactly as the stdlib does.

`json_line` must give what `json.loads` gives for every line (falling back to it where orjson
differs), and `content_hash` must hash the bytes `json.dumps(..., ensure_ascii=False)` wrote
before, or re-importing a file into an existing store would add every sample again.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from reflection.errors import InputError
from reflection.formats import open_dataset
from reflection.formats.containers import json_line
from reflection.records import Sample, content_hash

LINES = [
    '{"instruction": "Say hi", "input": "", "output": "Hi"}',
    '{"instruction": "caf\\u00e9 \\ud83d\\ude00 \u00e9\u4e2d", "output": "\\n\\t\\"\\\\"}',
    '{"instruction": "x", "output": "y", "id": 12345678901234567890123}',  # past 64 bits
    '{"instruction": "x", "output": "y", "id": -9223372036854775809}',
    '{"instruction": "x", "output": "y", "score": 0.1, "n": [1, 2.5, {"deep": 1e400}]}',
    '{"instruction": "x", "output": "y", "bad": NaN, "worse": -Infinity}',
    '{"instruction": "x", "output": "y", "a": 1, "a": 2}',  # duplicate keys: the last wins
    '{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}',
    '{"instruction": "x", "output": "y", "meta": {"tags": ["a", "b"], "ok": true, "n": null}}',
]


@pytest.mark.parametrize("line", LINES)
def test_a_line_reads_as_the_stdlib_reads_it(line):
    ours, theirs = json_line(line.encode("utf-8")), json.loads(line)
    # repr tells 1 from 1.0 and keeps key order; NaN != NaN, so compare the text.
    assert repr(ours) == repr(theirs)


def test_a_lone_surrogate_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(LINES[0] + "\n" + '{"instruction": "a\\ud800b", "output": "x"}\n')
    with pytest.raises(InputError) as caught:
        list(open_dataset(path))
    assert "line 2" in str(caught.value) and "surrogate" in str(caught.value)


def test_bad_utf8_and_bad_json_keep_their_messages(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(LINES[0].encode() + b"\n" + b'{"instruction": "\xff", "output": "x"}\n')
    with pytest.raises(InputError, match=r"line 2: not valid UTF-8 \(byte 0xff\)"):
        list(open_dataset(path))
    path.write_text(LINES[0] + "\n" + '{"instruction": "x", "output": }\n')
    with pytest.raises(InputError, match=r"line 2: invalid JSON: Expecting value \(column 32\)"):
        list(open_dataset(path))


def _stdlib_hash(sample: Sample) -> str:
    payload = json.dumps(
        [sample.instruction, sample.input, sample.output, sample.system, sample.history],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def test_the_content_hash_is_the_stdlib_one_on_every_code_point():
    codes = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(codes), 4096):
        text = "".join(map(chr, codes[start : start + 4096]))
        for sample in (
            Sample(text, "", "out"),
            Sample("in", text[::-1], text, system=text[:7]),
            Sample("q", "", "a", history=[[text[:50], '\x00\x7f"\\']]),
        ):
            assert content_hash(sample) == _stdlib_hash(sample), hex(codes[start])


def test_a_text_orjson_refuses_still_fails_as_before():
    with pytest.raises(UnicodeEncodeError):
        content_hash(Sample("a\ud800", "", "b"))


def _stdlib_compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


COMPACT_VALUES = [
    {},
    [],
    {"source": "import", "file": "a/b.jsonl", "record": 12, "line": 12, "model": ""},
    {"é": 1, "e": 2, "z": [True, False, None], "😀": {"b": "\x00\x1f\x7f\u2028", "a": -(2**63)}},
    {"temperature": 0.7, "top_p": 1.0, "nested": [{"x": 1e-07}]},  # floats: the stdlib
    {"bad": float("nan"), "big": 2**70},
    {2: "integer keys", 1: "a"},
    {"text": "lone \ud800 surrogate"},
    [[["deep"] * 2] * 2, ("a", "tuple")],
]


@pytest.mark.parametrize("value", COMPACT_VALUES)
def test_dumps_compact_writes_what_the_stdlib_writes(value):
    from reflection.store.base import dumps_compact

    assert dumps_compact(value) == _stdlib_compact(value)


def test_dumps_compact_sorts_keys_as_the_stdlib_on_every_code_point():
    from reflection.store.base import dumps_compact

    codes = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(codes), 8192):
        block = codes[start : start + 8192]
        value = {chr(c): chr(block[-1 - i]) for i, c in enumerate(block[::-1][:64])}
        value["text"] = "".join(map(chr, block))
        assert dumps_compact(value) == _stdlib_compact(value), hex(block[0])
