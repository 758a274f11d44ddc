"""Files that hold records: JSON lists, JSONL, CSV, Parquet and `datasets` directories.

Readers return [(where, record)] where `where` is {"line": n} or {"record": n} (1-based), so
a later validation error can still name its place. Writers are atomic: they write a temporary
file beside the target and rename it over, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError, Where
from .records import type_name

csv.field_size_limit(1 << 30)  # long answers exceed the default 128 KiB cell limit


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            path,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            line=line,
        ) from None


def _read_json(path: Path) -> list[tuple[Where, Any]]:
    text = _text(path)
    if not text.strip():
        raise InputError(path, "the file is empty")
    if text.lstrip().startswith("{"):
        # A JSON object first: JSONL, or a single object, which we treat as JSONL of one.
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return _read_jsonl(path, text)
        return [({"line": 1}, value)]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None
    if not isinstance(value, list):
        raise InputError(path, f"expected a JSON list of records, got {type_name(value)}")
    return [({"record": i + 1}, record) for i, record in enumerate(value)]


def _read_jsonl(path: Path, text: str | None = None) -> list[tuple[Where, Any]]:
    text = _text(path) if text is None else text
    if not text.strip():
        raise InputError(path, "the file is empty")
    rows: list[tuple[Where, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=number
            ) from None
        if not isinstance(value, dict):
            raise InputError(path, f"expected a JSON object, got {type_name(value)}", line=number)
        rows.append(({"line": number}, value))
    return rows


def _read_csv(path: Path) -> list[tuple[Where, Any]]:
    text = _text(path)
    if not text.strip():
        raise InputError(path, "the file is empty")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[Where, Any]] = []
    try:
        header = next(reader)
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
            rows.append(
                ({"line": start}, _table_row(dict(zip(header, values, strict=True)), empty=""))
            )
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
    return rows


def _table_row(row: dict, empty: Any) -> dict:
    """Tables cannot tell a missing value from an empty one: drop empty extras, decode history."""
    known = {"instruction", "input", "output", "system", "history"}
    record = {k: v for k, v in row.items() if k in known or v != empty}
    if isinstance(record.get("history"), str):
        # Undecodable history stays text: validation then reports it as the wrong type.
        with contextlib.suppress(json.JSONDecodeError):
            record["history"] = json.loads(record["history"]) if record["history"] else []
    return record


def _read_parquet(path: Path) -> list[tuple[Where, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise InputError(path, f"not a readable Parquet file ({exc})") from None
    return [
        ({"record": i + 1}, _table_row(row, empty=None)) for i, row in enumerate(table.to_pylist())
    ]


def _read_hf(path: Path, split: str | None) -> list[tuple[Where, Any]]:
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
    return [
        ({**where, "record": i + 1}, _table_row(row, empty=None))
        for i, row in enumerate(loaded.to_list())
    ]


def read_records(
    path: Path, container: str, *, split: str | None = None
) -> list[tuple[Where, Any]]:
    if container == "hf":
        return _read_hf(path, split)
    if path.is_dir():
        raise InputError(path, "is a folder; pass --format hf for a `datasets` folder")
    if container == "json":
        return _read_json(path)
    if container == "jsonl":
        return _read_jsonl(path)
    if container == "csv":
        return _read_csv(path)
    if container == "parquet":
        return _read_parquet(path)
    raise InputError(path, f"unknown container {container!r}")


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


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _columns(records: list[dict]) -> list[str]:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return list(columns)


def _csv_bytes(records: list[dict], delimiter: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    columns = _columns(records) or ["instruction", "input", "output"]
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _parquet_bytes(records: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(records) or ["instruction", "input", "output"]
    rows = [{c: record.get(c) for c in columns} for record in records]
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Extras of mixed types across records: store the odd columns as JSON text.
        table = pa.Table.from_pylist(
            [
                {c: (v if isinstance(v, str | None) else _cell(v)) for c, v in row.items()}
                for row in rows
            ]
        )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write_hf(path: Path, records: list[dict]) -> Path:
    import datasets

    datasets.disable_progress_bars()
    temp = Path(
        tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent if path.parent.exists() else None)
    )
    try:
        datasets.Dataset.from_list(records).save_to_disk(str(temp / "data"))
        if path.exists():
            shutil.rmtree(path)
        os.replace(temp / "data", path)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return path


def write_records(path: Path, records: list[dict], container: str) -> Path:
    """Write records in a container, atomically (temporary file, then rename)."""
    if container == "json":
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
        return _atomic_write(path, text.encode("utf-8"))
    if container == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        return _atomic_write(path, text.encode("utf-8"))
    if container == "csv":
        return _atomic_write(
            path, _csv_bytes(records, "\t" if path.suffix.lower() == ".tsv" else ",")
        )
    if container == "parquet":
        return _atomic_write(path, _parquet_bytes(records))
    if container == "hf":
        return _write_hf(path, records)
    raise ValueError(f"unknown container {container!r}")
