"""Write records to JSON lists, JSONL, CSV, Parquet and `datasets` folders, streaming.

Records come from an iterable and are written as they come, so an export of ten million
records holds a few thousand at a time. Tables need every column before the first row:
Parquet and `datasets` spool the records to a temporary JSONL file first, learning the
columns and their types, and write from that; CSV writes its rows as they come to a body
file and puts the header before them at the end. Every writer is atomic: it writes a
temporary file beside the target and renames it over, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import DiskFullError, free_space, is_disk_full

T = TypeVar("T")
CHUNK = 4096  # records per write, and per Parquet row group / Arrow batch
_BUFFER = 1 << 20
_DEFAULT_COLUMNS = ["instruction", "input", "output"]


def _umask() -> int:
    """The process's umask, read without changing it where the system says (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """A replaced file keeps its mode; a new one gets what open() would give it (0666 less the
    umask), not mkstemp's private 0600."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Any]:
    """A binary file that becomes `path` only if the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb", buffering=_BUFFER) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _chunks(items: Iterable[T]) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        yield chunk


def _write_json(path: Path, records: Iterable[dict]) -> Path:
    """Byte for byte what json.dumps(list, indent=2) writes, one record at a time."""
    with _atomic(path) as handle:
        empty = True
        for chunk in _chunks(records):
            parts = []
            for record in chunk:
                parts.append("[\n  " if empty else ",\n  ")
                parts.append(json.dumps(record, ensure_ascii=False, indent=2).replace("\n", "\n  "))
                empty = False
            handle.write("".join(parts).encode("utf-8"))
        handle.write(b"[]\n" if empty else b"\n]\n")
    return path


def _write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    with _atomic(path) as handle:
        for chunk in _chunks(records):
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk)
            handle.write(text.encode("utf-8"))
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class _Spool:
    """Records parked in a temporary JSONL file, with their columns (in order of first
    appearance) and, for Parquet and `datasets`, what each column holds."""

    def __init__(self, records: Iterable[dict], folder: Path, *, types: bool):
        self.columns: dict[str, None] = {}
        self.kinds: dict[str, set[type]] = {}
        self.nested: dict[str, list] = {}  # Arrow types seen for list and dict columns
        self.odd = False  # a column mixes text with other values: everything goes as text
        fd, name = tempfile.mkstemp(prefix=".spool.", suffix=".jsonl", dir=folder)
        self.path = Path(name)
        try:
            with os.fdopen(fd, "wb", buffering=_BUFFER) as handle:
                for chunk in _chunks(records):
                    for record in chunk:
                        self.columns.update(dict.fromkeys(record))
                    if types:
                        self._learn(chunk)
                    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk)
                    handle.write(text.encode("utf-8"))
        except BaseException:  # a full disk, a bad record: no spool left behind
            self.close()
            raise

    def _learn(self, chunk: list[dict]) -> None:
        import pyarrow as pa

        for column in self.columns:
            values = [r[column] for r in chunk if r.get(column) is not None]
            kinds = self.kinds.setdefault(column, set())
            kinds.update(map(type, values))
            if kinds & {list, dict} and not self.odd:
                try:
                    self.nested.setdefault(column, []).append(pa.array(values).type)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    self.odd = True
            if str in kinds and len(kinds) > 1 or bool in kinds and kinds & {int, float}:
                self.odd = True

    def chunks(self) -> Iterator[list[dict]]:
        with open(self.path, "rb") as handle:
            yield from _chunks(json.loads(line) for line in handle)

    def schema(self):
        """The Arrow schema every chunk is written with; None where text must stand in."""
        import pyarrow as pa

        fields = []
        for column in self.columns or dict.fromkeys(_DEFAULT_COLUMNS):
            kinds = self.kinds.get(column, set())
            if self.odd or not kinds or kinds == {str}:
                kind = pa.string() if self.odd or kinds else pa.null()
            elif kinds == {bool}:
                kind = pa.bool_()
            elif kinds == {int}:
                kind = pa.int64()
            elif kinds <= {int, float}:
                kind = pa.float64()
            else:
                try:
                    kind = _unify(self.nested.get(column, []))
                except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
                    self.odd = True
                    return self.schema()
            fields.append(pa.field(column, kind))
        return pa.schema(fields)

    def rows(self, chunk: list[dict], columns: list[str]) -> list[dict]:
        if self.odd:
            return [{c: (v if isinstance(v, str | None) else _cell(v)) for c in columns
                     for v in (r.get(c),)} for r in chunk]  # fmt: skip
        return [{c: r.get(c) for c in columns} for r in chunk]

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _unify(types: list):
    import pyarrow as pa

    schemas = [pa.schema([pa.field("v", t)]) for t in types]
    if not schemas:
        return pa.null()
    return pa.unify_schemas(schemas, promote_options="permissive").field("v").type


@contextlib.contextmanager
def _spooled(path: Path, records: Iterable[dict], *, types: bool) -> Iterator[_Spool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    spool = _Spool(records, path.parent, types=types)
    try:
        yield spool
    finally:
        spool.close()


def _write_csv(path: Path, records: Iterable[dict]) -> Path:
    """CSV rows written as the records come, to a body file without the header; the header
    (every column, in order of first appearance) goes first once the records are done.

    A column first seen in a later chunk joins at the end, so rows written before it are
    only short: those are read back and padded. Usually every record has the same fields
    and the body is copied as it is (a JSONL spool and a second parse took 1M records
    ~2.2 times as long as JSONL)."""
    import csv
    import io

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    columns: dict[str, None] = {}
    short_until = 0  # bytes of the body whose rows may lack the latest columns
    fd, name = tempfile.mkstemp(prefix=".body.", suffix=".csv", dir=path.parent)
    body = Path(name)
    try:
        with os.fdopen(fd, "w+b", buffering=_BUFFER) as handle:
            buffer = io.StringIO(newline="")
            writer = _CsvRows(buffer, delimiter)
            for chunk in _chunks(records):
                known = len(columns)
                for record in chunk:
                    columns.update(dict.fromkeys(record))
                if known and len(columns) > known:
                    short_until = handle.tell()
                names = list(columns)
                writer.write([[_cell(record.get(c)) for c in names] for record in chunk])
                _drain(buffer, handle)
            handle.flush()
            handle.seek(0)
            with _atomic(path) as out:
                names = list(columns) or _DEFAULT_COLUMNS
                writer.write([names])
                rows = csv.reader(_lines_until(handle, short_until), delimiter=delimiter)
                for short in _chunks(rows):
                    writer.write([row + [""] * (len(names) - len(row)) for row in short])
                    _drain(buffer, out)
                _drain(buffer, out)
                shutil.copyfileobj(handle, out, _BUFFER)
    finally:
        body.unlink(missing_ok=True)
    return path


def _drain(buffer: Any, handle: Any) -> None:
    """Move the text written to `buffer` into the binary file `handle`, as UTF-8."""
    handle.write(buffer.getvalue().encode("utf-8"))
    buffer.seek(0)
    buffer.truncate()


class _CsvRows:
    """CSV rows with "\\n" line ends, quoted where needed. A value holding a carriage return
    is quoted too: the csv module quotes only the line terminator's characters, and a bare
    "\\r" left unquoted ends the row for every reader (ours refused the file)."""

    def __init__(self, buffer: Any, delimiter: str):
        import csv

        self.plain = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        self.quoted = csv.writer(buffer, delimiter=delimiter, lineterminator="\n",
                                 quoting=csv.QUOTE_ALL)  # fmt: skip

    def write(self, rows: list[list[str]]) -> None:
        if not any(_bare_cr(value) for row in rows for value in row):
            self.plain.writerows(rows)
            return
        for row in rows:
            (self.quoted if any(map(_bare_cr, row)) else self.plain).writerow(row)


def _bare_cr(value: str) -> bool:
    """A carriage return the csv module would leave unquoted (a newline gets quotes)."""
    return "\r" in value and "\n" not in value


def _lines_until(handle: Any, end: int) -> Iterator[str]:
    """The lines of a binary file from where it is to byte `end` (a line's end), as text."""
    done = handle.tell()
    while done < end and (line := handle.readline()):
        done += len(line)
        yield line.decode("utf-8")


def _arrow_tables(spool: _Spool, schema) -> Iterator:
    import pyarrow as pa

    columns = schema.names
    for chunk in spool.chunks():
        yield pa.Table.from_pylist(spool.rows(chunk, columns), schema=schema)


def _write_parquet(path: Path, records: Iterable[dict]) -> Path:
    import pyarrow.parquet as pq

    with _spooled(path, records, types=True) as spool, _atomic(path) as handle:
        schema = spool.schema()
        with pq.ParquetWriter(handle, schema) as writer:
            for table in _arrow_tables(spool, schema):
                writer.write_table(table)
    return path


def _write_hf(path: Path, records: Iterable[dict]) -> Path:
    """A `datasets` folder as `save_to_disk` writes it, the Arrow file written in batches."""
    import datasets
    import pyarrow as pa

    datasets.disable_progress_bars()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with _spooled(path, records, types=True) as spool:
            schema = spool.schema()
            features = datasets.Features.from_arrow_schema(schema)
            tables = _arrow_tables(spool, schema)
            first = next(tables, None)
            # A dataset of the first record writes the folder and its descriptions...
            head = first.slice(0, 1).to_pylist() if first is not None else []
            datasets.Dataset.from_list(head, features=features).save_to_disk(str(temp / "data"))
            if first is not None:  # ...and every record replaces its Arrow file
                (data_file,) = (temp / "data").glob("*.arrow")
                with (
                    pa.OSFile(str(data_file), "wb") as sink,
                    pa.ipc.new_stream(sink, features.arrow_schema) as writer,
                ):
                    for table in itertools.chain([first], tables):
                        writer.write_table(table.cast(features.arrow_schema))
        if path.exists():
            shutil.rmtree(path)
        os.replace(temp / "data", path)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return path


def write_records(path: Path, records: Iterable[dict], container: str) -> Path:
    """Write records in a container, atomically (temporary file, then rename), streaming."""
    writers = {"json": _write_json, "jsonl": _write_jsonl, "csv": _write_csv,
               "parquet": _write_parquet, "hf": _write_hf}  # fmt: skip
    if container not in writers:
        raise ValueError(f"unknown container {container!r}")
    try:
        return writers[container](path, records)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(
            f"The disk filled up while writing {path}: nothing was written there (the partial"
            f" file is removed). {free_space(path.parent)} Free some space and try again. ({exc})"
        ) from exc
