"""Files that hold records: JSON lists, JSONL, CSV, Parquet and `datasets` directories.

Readers are generators of (where, record), where `where` is {"line": n} or {"record": n}
(1-based), so a later validation error can still name its place. They hold one chunk of the
file at a time, never the whole of it: a file of ten million records reads in the memory of
a few thousand. Writers live in `reflection.formats.writers`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError, Where
from .jsonstream import iter_json_list
from .records import type_name

csv.field_size_limit(1 << 30)  # long answers exceed the default 128 KiB cell limit

Rows = Iterator[tuple[Where, Any]]
BATCH = 4096  # rows per Arrow batch read from Parquet and `datasets`
_BOM = codecs.BOM_UTF8


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError, line: int) -> InputError:
    return InputError(
        path, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8", line=line
    )


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number, line) of a file read in binary, the UTF-8 BOM dropped; lines end at \\n."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            yield number, line


def _first_char(path: Path) -> str:
    """The first character that is not white space ('' for a blank file)."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
        while head:
            stripped = head.removeprefix(_BOM).lstrip() if head.startswith(_BOM) else head.lstrip()
            if stripped:
                return chr(stripped[0])
            head = handle.read(1 << 16)
    return ""


def _read_json(path: Path) -> Rows:
    first = _first_char(path)
    if not first:
        raise InputError(path, "the file is empty")
    if first == "{":
        # A JSON object first: JSONL, or a single (perhaps multi-line) object as one record.
        yield from _read_jsonl(path, single_object=True)
        return
    for number, record in iter_json_list(path):
        yield {"record": number}, record


def _single_object(path: Path) -> Any:
    """The whole file as one JSON value, for a file whose first line is not a whole object;
    None if it is not one (or too large to be one record)."""
    if path.stat().st_size > 64 << 20:
        return None
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def json_line(line: bytes) -> Any:
    """One JSON text as `json.loads` reads it, through orjson (2.5 x faster) where the two
    agree: orjson turns integers past 64 bits into floats and refuses what the stdlib accepts
    (NaN), so a value holding any float, or a line orjson refuses, is read again by the
    stdlib, whose errors (and UnicodeDecodeError) are the ones raised; but an escaped lone
    surrogate, which the stdlib lets through into a text no store can encode, is orjson's
    error."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        value = json.loads(line.decode("utf-8"))
        if "surrogate" in exc.msg:  # "\\ud800" alone: no text can hold it (nor SQLite store it)
            raise
        return value
    if _has_float(value):
        return json.loads(line.decode("utf-8"))
    return value


def _has_float(value: Any) -> bool:
    if type(value) is dict:
        return any(type(v) is not str and _has_float(v) for v in value.values())
    if type(value) is list:
        return any(type(v) is not str and _has_float(v) for v in value)
    return type(value) is float


def _read_jsonl(path: Path, *, single_object: bool = False) -> Rows:
    seen = False
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            value = json_line(line)
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, line, exc, number) from None
        except json.JSONDecodeError as exc:
            if single_object and not seen:
                value = _single_object(path)
                if value is not None:
                    yield {"line": 1}, value
                    return
            raise InputError(
                path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=number
            ) from None
        if not isinstance(value, dict):
            raise InputError(path, f"expected a JSON object, got {type_name(value)}", line=number)
        seen = True
        yield {"line": number}, value
    if not seen:
        raise InputError(path, "the file is empty")


def _decoded(path: Path) -> Iterator[str]:
    """A file's lines as text, for csv.reader; bad UTF-8 names its line."""
    for number, line in _lines(path):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, line, exc, number) from None


def _read_csv(path: Path) -> Rows:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(_decoded(path), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)  # blank lines before the header
        if header is None:
            raise InputError(path, "the file is empty")
        if len(set(header)) != len(header):
            raise InputError(path, f"repeated column names in the header: {header}", line=1)
        start = reader.line_num + 1
        for values in reader:
            if not any(values):
                start = reader.line_num + 1
                continue
            if len(values) != len(header):
                raise InputError(
                    path, f"{len(values)} fields where the header has {len(header)}", line=start
                )
            yield {"line": start}, _table_row(dict(zip(header, values, strict=True)), empty="")
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV: {exc}", line=reader.line_num) from None


def _table_row(row: dict, empty: Any) -> dict:
    """Tables cannot tell a missing value from an empty one: drop empty extras, decode history."""
    known = {"instruction", "input", "output", "system", "history"}
    record = {k: v for k, v in row.items() if k in known or v != empty}
    if isinstance(record.get("history"), str):
        # Undecodable history stays text: validation then reports it as the wrong type.
        with contextlib.suppress(json.JSONDecodeError):
            record["history"] = json.loads(record["history"]) if record["history"] else []
    return record


def _batches_rows(batches: Iterable[Any], where: Where) -> Rows:
    number = 0
    for batch in batches:
        for row in batch.to_pylist():
            number += 1
            yield {**where, "record": number}, _table_row(row, empty=None)


def _read_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq

    def batches():
        try:
            # Without pre-buffering: with it, pyarrow kept every column chunk it had read
            # (a 1M-record file: 735 MB at the end of an import, 166 MB as JSONL), and
            # reading took 2.7 times as long.
            parquet = pq.ParquetFile(path, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=BATCH)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise InputError(path, f"not a readable Parquet file ({exc})") from None

    yield from _batches_rows(batches(), {})


def _arrow_batches(loaded) -> Iterator:
    """A `datasets` Dataset's rows in Arrow batches. Its files are read as streams, not
    memory-mapped: mapped pages count as the process's memory once touched."""
    import pyarrow as pa

    files = [f["filename"] for f in loaded.cache_files]
    if loaded._indices is not None or not files:  # a selection, or held in memory
        yield from loaded.with_format("arrow").iter(batch_size=BATCH)
        return
    for name in files:
        with pa.OSFile(name) as source:
            yield from pa.ipc.open_stream(source)


def _read_hf(path: Path, split: str | None) -> Rows:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise InputError(
            path, "reading Hugging Face datasets needs `pip install reflection-studio[hf]`"
        ) from None
    datasets.disable_progress_bars()
    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
        else:
            builder = {".jsonl": "json", ".ndjson": "json", ".tsv": "csv", ".pq": "parquet"}.get(
                path.suffix.lower(), path.suffix.lower().lstrip(".")
            )
            loaded = datasets.load_dataset(builder, data_files=str(path))
    except Exception as exc:
        raise InputError(path, f"`datasets` cannot load it ({type(exc).__name__}: {exc})") from None
    where: Where = {}
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        chosen = split or ("train" if "train" in names else names[0] if len(names) == 1 else None)
        if chosen is None or chosen not in loaded:
            raise InputError(path, f"choose a split with --split: {', '.join(names)}")
        loaded = loaded[chosen]
        if len(names) > 1:  # where there was a choice, every record says which split it is in
            where = {"split": chosen}
    yield from _batches_rows(_arrow_batches(loaded), where)


def iter_records(path: Path, container: str, *, split: str | None = None) -> Rows:
    """(where, record) of every record in a file, read a chunk at a time."""
    if container == "hf":
        return _read_hf(path, split)
    if path.is_dir():
        raise InputError(path, "is a folder; pass --format hf for a `datasets` folder")
    readers = {"json": _read_json, "jsonl": _read_jsonl, "csv": _read_csv}
    if container in readers:
        return readers[container](path)
    if container == "parquet":
        return _read_parquet(path)
    raise InputError(path, f"unknown container {container!r}")


def read_records(
    path: Path, container: str, *, split: str | None = None
) -> list[tuple[Where, Any]]:
    """Every (where, record) of a file, as a list (for files known to be small)."""
    return list(iter_records(path, container, split=split))
