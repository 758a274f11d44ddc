"""Reading files of reflections made elsewhere: records in any container, our field names
resolved against theirs, each record validated into a `Row` for `reflection.ingest.adopt`.

Errors name the file and the record (or line), like every reader in `reflection.formats`.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from ..errors import InputError, ReflectionError, Where
from ..formats import open_dataset
from ..formats.containers import iter_records
from ..records import Candidate, Sample

SHAPES = ("paired", "aligned", "raw", "pairs")
KINDS = ("instruction", "response", "both", "other")
# Our name for a field -> the names files use for it, tried in order.
FIELDS = {
    "instruction": ("instruction", "Instruction", "text", "prompt", "conversations"),
    "input": ("input",),
    "output": ("output",),
    "new_instruction": ("new_instruct", "new_instruction"),
    "new_input": ("new_input",),
    "new_output": ("new_answer", "better_answer", "new_output", "new_response"),
    "critique": ("critique",),
    "raw": ("raw", "raw_text", "reply"),
    "answer1": ("Answer1", "answer1"),
    "answer2": ("Answer2", "answer2"),
    "scores": ("scores",),
    "scores_reverse": ("scores_reverse",),
    "review": ("review",),
    "review_reverse": ("review_reverse",),
    "model": ("model",),
}
_NEW = ("new_instruction", "new_input", "new_output")


@dataclass
class Row:
    """One validated record, before matching."""

    number: int  # 1-based record number
    where: Where
    record: Any
    original: Sample | None = None  # set when the record carries its original's text
    new: dict[str, str] = field(default_factory=dict)
    raw: str | None = None
    model: str = ""
    judge: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # the record's id, when matched by field
    sample_id: int | None = None
    new_index: int | None = None  # index into the originals this import adds


def norm(text: str) -> str:
    """`text` stripped, with CRLF as LF and no line's trailing whitespace."""
    stripped = text.strip()
    if "\r" in stripped:
        return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n"))
    if "\n" not in stripped:  # one line: stripping was all (import's hot path, 2.7x faster)
        return stripped
    return "\n".join(map(str.rstrip, stripped.split("\n")))


def content_key(instruction: str, input: str, output: str) -> tuple[str, str, str]:
    return norm(instruction), norm(input), norm(output)


def same_text(a: str, b: str) -> bool:
    """norm(a) == norm(b), without normalising texts that are equal as they are, or that
    differ in their first or last character other than whitespace (norm keeps those)."""
    if a == b:
        return True
    a_ends, b_ends = a.strip(), b.strip()
    if a_ends[:1] != b_ends[:1] or a_ends[-1:] != b_ends[-1:]:
        return False
    return norm(a) == norm(b)


def same_content(a: Sample, b: Sample | Candidate) -> bool:
    """content_key(a) == content_key(b), field by field, stopping at the first difference."""
    return (
        same_text(a.output, b.output)
        and same_text(a.instruction, b.instruction)
        and same_text(a.input, b.input)
    )


def id_key(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | float | str):
        return str(value).strip()
    return None


# --- reading ---------------------------------------------------------------------------------


def _jsonl_values(path: Path) -> Iterator[tuple[Where, Any]]:
    """A JSONL file's values, strings allowed (raw replies), a line at a time."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    path, "not valid UTF-8; save the file as UTF-8", line=number
                ) from None
            if text.strip():
                try:
                    yield {"line": number}, json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(path, f"invalid JSON: {exc.msg}", line=number) from None


def iter_rows(
    path: Path, split: str | None = None
) -> tuple[Iterator[tuple[Where, Any]], dict[str, Any]]:
    """(where, record) of any JSON/JSONL/CSV/Parquet file or `datasets` folder (`split` picks
    a DatasetDict's split), strings allowed, read as they are needed; and its meta info."""
    if not path.exists():
        raise InputError(path, "no such file or directory")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows: Iterator[tuple[Where, Any]] = _jsonl_values(path)
    else:
        container = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(
            suffix, "hf" if path.is_dir() else "json"
        )
        if split and container != "hf":
            raise InputError(path, "--split applies to a Hugging Face `datasets` folder only")
        rows = iter_records(path, container, split=split)
    head = list(itertools.islice(rows, 2))
    meta: dict[str, Any] = {}
    if len(head) == 1 and isinstance(head[0][1], dict) and isinstance(head[0][1].get("data"), list):
        # A wrapper object, e.g. Cherry LLM's {"Meta_Info": {...}, "data": [...]}.
        wrapper = head[0][1]
        meta = wrapper.get("Meta_Info") or wrapper.get("meta") or {}
        head = [({"record": i + 1}, record) for i, record in enumerate(wrapper["data"])]
    if not head:
        raise InputError(path, "the file holds no records")
    return itertools.chain(head, rows), meta if isinstance(meta, dict) else {}


def _resolve(record: dict[str, Any], ours: str, fields: dict[str, str]) -> str | None:
    """The file's name for our field in this record, or None if absent."""
    if ours in fields:
        return fields[ours] if fields[ours] in record else None
    return next((name for name in FIELDS[ours] if name in record), None)


def detect_shape(record: Any, fields: dict[str, str] | None = None) -> str:
    """Which of SHAPES a first record looks like."""
    fields = fields or {}
    if isinstance(record, str):
        return "raw"
    if not isinstance(record, dict):
        return "aligned"
    if _resolve(record, "answer1", fields) and _resolve(record, "answer2", fields):
        return "pairs"
    if any(_resolve(record, name, fields) for name in _NEW):
        return "paired"
    if _resolve(record, "raw", fields) and not any(
        key in record for key in ("instruction", "conversations", "messages")
    ):
        return "raw"
    return "aligned"


@overload
def _text(
    path: Path, row: Row, name: str, fields: dict[str, str], *, required: Literal[True]
) -> str: ...
@overload
def _text(
    path: Path, row: Row, name: str, fields: dict[str, str], *, required: bool
) -> str | None: ...
def _text(path: Path, row: Row, name: str, fields: dict[str, str], *, required: bool) -> str | None:
    key = _resolve(row.record, name, fields)
    if key is None:
        if required:
            wanted = fields.get(name) or " or ".join(repr(n) for n in FIELDS[name])
            raise InputError(path, f"missing field {wanted}", **row.where)
        return None
    value = row.record[key]
    if value is None:
        return ""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = value[0]  # LIMA-style `conversations`: the first turn is the question
    if not isinstance(value, str):
        raise InputError(
            path, f"field {key!r} must be text, not {type(value).__name__}", **row.where
        )
    return value


def _judge_pair(path: Path, row: Row, value: Any, key: str) -> tuple[float, float] | None:
    """Two judge scores from a list, '[8.0, 7.0]' or '8 7'; None when the judge gave up (-1)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = value.replace(",", " ").split()
    try:
        pair = [float(v) for v in value]
    except (TypeError, ValueError):
        pair = []
    if len(pair) != 2:
        raise InputError(path, f"field {key!r} must hold two scores, got {value!r}", **row.where)
    return None if min(pair) < 0 else (pair[0], pair[1])


def rows_for_shape(
    path: Path,
    shape: str,
    rows: Iterable[tuple[Where, Any]],
    fields: dict[str, str],
    meta: dict[str, Any],
    model: str,
) -> Iterator[Row]:
    """Each (where, record) validated as a Row of the shape, one at a time."""
    for number, (where, record) in enumerate(rows, start=1):
        row = Row(number=number, where=where, record=record)
        if shape == "raw" and isinstance(record, str | type(None)):
            row.raw = record or ""
            row.model = model
            yield row
            continue
        if not isinstance(record, dict):
            raise InputError(
                path, f"expected an object, got {type(record).__name__} ({shape} shape)", **where
            )
        stated = _text(path, row, "model", fields, required=False)
        row.model = model or stated or ""
        if shape == "raw":
            row.raw = _text(path, row, "raw", fields, required=True)
        elif shape == "paired":
            row.original = Sample(
                instruction=_text(path, row, "instruction", fields, required=True),
                input=_text(path, row, "input", fields, required=False) or "",
                output=_text(path, row, "output", fields, required=True),
            )
            found = {n: _text(path, row, n, fields, required=False) for n in _NEW}
            if all(v is None for v in found.values()):
                raise InputError(
                    path, "no new version (new_instruct, new_answer, better_answer...)", **where
                )
            row.new = {k.removeprefix("new_"): v for k, v in found.items() if v is not None}
            row.new["critique"] = _text(path, row, "critique", fields, required=False) or ""
        elif shape == "pairs":
            instruction = _text(path, row, "instruction", fields, required=True)
            inp = _text(path, row, "input", fields, required=False) or ""
            row.original = Sample(
                instruction=instruction,
                input=inp,
                output=_text(path, row, "answer1", fields, required=True),
            )
            row.new = {"instruction": instruction, "input": inp}
            row.new["output"] = _text(path, row, "answer2", fields, required=True)
            for name in ("scores", "scores_reverse"):
                key = _resolve(record, name, fields)
                if key is not None:
                    row.judge[name] = _judge_pair(path, row, record[key], key)
            for name in ("review", "review_reverse"):
                text = _text(path, row, name, fields, required=False)
                if text:
                    row.judge[name] = text
        if row.original is not None:
            used = {_resolve(record, n, fields) for n in FIELDS} - {None}
            row.original.meta = {k: v for k, v in record.items() if k not in used}
            row.original.source = str(path)
        yield row


def aligned_rows(
    path: Path,
    fmt: str | None,
    columns: dict[str, str] | None,
    model: str,
    split: str | None = None,
) -> Iterator[Row]:
    """A second dataset's records as new versions, read as they are needed."""
    stream = open_dataset(path, fmt, columns=columns, split=split)
    for number, (where, sample) in enumerate(stream.places(), start=1):
        row = Row(number=number, where=where, record=sample.meta)
        row.new = {"instruction": sample.instruction, "input": sample.input}
        row.new["output"] = sample.output
        row.model = model or str(sample.meta.get("model") or "")
        yield row


def parse_fields(items: str | list[str] | tuple[str, ...]) -> dict[str, str]:
    """A field mapping from "FIELD=NAME" items (or one comma-separated string of them)."""
    if isinstance(items, str):
        items = [item for item in items.split(",") if item.strip()]
    mapping = {}
    for item in items:
        ours, sep, theirs = (part.strip() for part in item.partition("="))
        if not sep or ours not in FIELDS or not theirs:
            raise ReflectionError(
                f"{item.strip()!r}: expected FIELD=NAME with FIELD one of {', '.join(FIELDS)}"
            )
        mapping[ours] = theirs
    return mapping


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files and their names (a `datasets` folder)."""
    digest = hashlib.sha256()
    parts = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for part in parts:
        if path.is_dir():
            digest.update(part.relative_to(path).as_posix().encode())
        with open(part, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()
