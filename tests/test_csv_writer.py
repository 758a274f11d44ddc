"""CSV export writes its rows as they come and its header last: the same bytes as writing every
record with the full header, columns first seen late included, and values with a bare carriage
return quoted so that the file reads back."""

from __future__ import annotations

import csv
import io
import random

import pandas as pd
import pytest

import reflection.formats.writers as writers
from reflection.formats.containers import _read_csv
from reflection.formats.writers import write_records


def _records(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    texts = ['x,\n"y"\r\nz', "plain", "", "tab\there", "é\u2028", "a;b"]
    records = []
    for i in range(n):
        record = {"instruction": f"item {i}", "output": rng.choice(texts)}
        if rng.random() < 0.02:  # a column first seen somewhere in the middle
            record[rng.choice(["extra", "more", "nested"])] = rng.choice([{"k": [1, 2]}, 3, "s"])
        records.append(record)
    return records


def _reference(records: list[dict], delimiter: str) -> bytes:
    """Every record written with the whole header known up front (what a spool gave)."""
    columns = list(dict.fromkeys(c for r in records for c in r))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([writers._cell(r.get(c)) for c in columns] for r in records)
    return buffer.getvalue().encode("utf-8")


@pytest.mark.parametrize("chunk", [3, 100, 4096])
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_rows_written_before_a_new_column_are_padded(tmp_path, monkeypatch, chunk, suffix):
    monkeypatch.setattr(writers, "CHUNK", chunk)
    records = _records(2_000)
    path = write_records(tmp_path / f"out{suffix}", records, "csv")
    assert path.read_bytes() == _reference(records, "\t" if suffix == ".tsv" else ",")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the body file is gone


def test_no_records_give_the_default_header(tmp_path):
    path = write_records(tmp_path / "empty.csv", [], "csv")
    assert path.read_text() == "instruction,input,output\n"


@pytest.mark.parametrize("text", ["\r", "a\rb", "end\r", "\r\rtwo"])
def test_a_bare_carriage_return_reads_back(tmp_path, monkeypatch, text):
    """The csv module quotes only the line terminator's characters: "a\\rb" went out unquoted
    and every reader split the row there (ours refused the file as malformed)."""
    monkeypatch.setattr(writers, "CHUNK", 2)
    records = [{"instruction": f"q{i}", "input": "", "output": text if i % 3 else "plain"}
               for i in range(7)]  # fmt: skip
    path = write_records(tmp_path / "cr.csv", records, "csv")
    assert [row for _, row in _read_csv(path)] == records
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert table.to_dict("records") == records


def test_a_failing_record_source_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "CHUNK", 2)

    def broken():
        yield {"instruction": "a", "output": "b"}
        yield {"instruction": "c", "output": "d"}
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        write_records(tmp_path / "out.csv", broken(), "csv")
    assert list(tmp_path.iterdir()) == []
