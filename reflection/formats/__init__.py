"""Read and write datasets: Alpaca JSON/JSONL, ShareGPT, OpenAI chat JSONL, CSV, Parquet and
Hugging Face `datasets`.

Formats, by name:
- `alpaca`: a JSON list or JSONL of {instruction, input, output, [system], [history]};
- `sharegpt`: a JSON list or JSONL of {conversations: [{from, value}]} (or the
  {messages: [{role, content}]} variant);
- `openai`: JSONL of {messages: [{role, content}]} (OpenAI chat fine-tuning files);
- `csv`, `parquet`: a table with instruction/input/output columns (a mapping renames others);
- `hf`: a `datasets` directory written by `save_to_disk`, or any file `datasets` can load.
Reading streams: `open_dataset` validates each record as it is read, in constant memory,
and raises one InputError that names the file, the line (JSONL, CSV) or record number
(JSON list, Parquet, `datasets`) and the problem. Writing streams too (`write_dataset`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError, Where
from ..records import Sample
from .containers import iter_records
from .records import (
    SHAPES,
    RecordError,
    sample_from_record,
    shape_of,
    to_alpaca,
    to_chat,
    type_name,
)
from .writers import write_records

FORMATS = ("alpaca", "sharegpt", "openai", "csv", "parquet", "hf")
# The file name ending each format is written with by default ("hf" is a folder).
SUFFIXES = {"alpaca": ".json", "sharegpt": ".json", "openai": ".jsonl", "csv": ".csv",
            "parquet": ".parquet", "hf": ""}  # fmt: skip
_SHAPE_OF_FORMAT = {"alpaca": "alpaca", "sharegpt": "sharegpt", "openai": "messages"}
_EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def container_of(path: Path, fmt: str | None = None) -> str:
    """How a file holds its records: json, jsonl, csv, parquet or hf."""
    if fmt == "hf" or path.is_dir():
        return "hf"
    if fmt in ("csv", "parquet"):
        return fmt
    if fmt == "openai":
        return "jsonl" if path.suffix.lower() != ".json" else "json"
    container = _EXTENSIONS.get(path.suffix.lower())
    if container is None and fmt in ("alpaca", "sharegpt"):
        return "json"
    if container is None:
        raise InputError(
            path,
            f"unknown format (extension {path.suffix or 'none'!r}); pass --format with one of "
            + ", ".join(FORMATS),
        )
    return container


class SampleStream:
    """A dataset file's samples, validated one at a time as they are read: iterate once.

    `format` is known before the first sample is taken. A malformed record raises InputError
    (naming the file and the line or record) when iteration reaches it.
    """

    def __init__(self, path: Path, fmt: str, places: Iterator[tuple[Where, Sample]]):
        self.path, self.format, self._places = path, fmt, places

    def __iter__(self) -> Iterator[Sample]:
        return (sample for _, sample in self._places)

    def places(self) -> Iterator[tuple[Where, Sample]]:
        """(where, sample): each sample with its line or record number, as errors name it."""
        return self._places


def open_dataset(
    path: str | Path,
    fmt: str | None = None,
    *,
    columns: dict[str, str] | None = None,
    split: str | None = None,
) -> SampleStream:
    """A file's samples as a stream, in constant memory; the first record is read and checked.

    `columns` maps our field names to the file's (e.g. {"output": "response"});
    `split` picks a split of a `datasets` DatasetDict.
    """
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise InputError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not path.exists():
        raise InputError(path, "no such file or directory")
    container = container_of(path, fmt)
    rows = iter_records(path, container, split=split)  # (where, record)
    if columns:
        rows = ((where, _rename(record, columns)) for where, record in rows)
    head = next(rows, None)
    if head is None:
        raise InputError(path, "the file holds no records")
    where, first = head
    shape = _SHAPE_OF_FORMAT.get(fmt or "") or shape_of(first)
    if shape is None:
        if not isinstance(first, dict):
            raise InputError(path, f"expected an object, got {type_name(first)}", **where)
        raise InputError(
            path,
            "unknown format: no 'instruction', 'conversations' or 'messages' field"
            f" (fields: {', '.join(map(str, first)) or 'none'}); map columns or pass --format",
            **where,
        )
    detected = fmt or _format_name(container, shape, first)
    return SampleStream(path, detected, _samples(path, itertools.chain([head], rows), shape))


def _samples(path: Path, rows, shape: str) -> Iterator[tuple[Where, Sample]]:
    source = str(path)
    for position, (where, record) in enumerate(rows):
        try:
            sample = sample_from_record(record, shape)
        except RecordError as exc:
            raise InputError(path, str(exc), **where) from None
        sample.position = position
        sample.source = source
        yield where, sample


def read_dataset(
    path: str | Path,
    fmt: str | None = None,
    *,
    columns: dict[str, str] | None = None,
    split: str | None = None,
) -> tuple[list[Sample], str]:
    """Every sample of a (small) file, validated, and the format it was read as."""
    stream = open_dataset(path, fmt, columns=columns, split=split)
    return list(stream), stream.format


def _format_name(container: str, shape: str, first: dict) -> str:
    if container in ("csv", "parquet", "hf"):
        return container
    if shape == "messages":
        return "openai" if container == "jsonl" else "sharegpt"
    return shape


def _rename(record, columns: dict[str, str]):
    if not isinstance(record, dict):
        return record
    renamed = dict(record)
    for ours, theirs in columns.items():
        if theirs in renamed:
            renamed[ours] = renamed.pop(theirs)
    return renamed


def format_for_path(path: str | Path, fmt: str | None = None) -> str:
    """The format to write: the one asked for, else guessed from the extension."""
    path = Path(path)
    if fmt:
        if fmt not in FORMATS:
            raise InputError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "alpaca"
    if suffix == "":
        return "hf"
    raise InputError(path, f"cannot tell the format from {suffix!r}; pass --format")


def to_record(version: dict, meta: dict, fmt: str) -> dict:
    """One output record in a format's shape (tables take the Alpaca shape)."""
    if fmt in ("sharegpt", "openai"):
        return to_chat(version, meta, "sharegpt" if fmt == "sharegpt" else "messages")
    return to_alpaca(version, meta)


def write_dataset(path: str | Path, records: Iterable[dict], fmt: str) -> Path:
    """Write records (already in the format's shape) atomically, streaming; returns the path."""
    path = Path(path)
    container = container_of(path, fmt) if fmt != "hf" else "hf"
    if fmt == "openai":
        container = "jsonl"
    return write_records(path, records, container)


__all__ = [
    "FORMATS",
    "SHAPES",
    "SampleStream",
    "format_for_path",
    "open_dataset",
    "read_dataset",
    "to_record",
    "write_dataset",
]
