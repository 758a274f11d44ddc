"""Import and export stream: memory stays flat as files grow, and a bad last record of a large
file still leaves the database exactly as it was."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from reflection.errors import InputError
from reflection.export.curated import export_dataset
from reflection.formats import open_dataset
from reflection.formats.writers import write_records
from reflection.ingest.datasets import import_dataset
from reflection.store.queue import QueueQuery

ROOT = Path(__file__).resolve().parent.parent
# Runs a command and prints its peak RSS in KB. A child's peak includes what it had before
# exec, a copy of its parent: this small parent keeps pytest's memory out of the figure.
PEAK = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.exit(f'exit {status}') if status else print(usage.ru_maxrss)\n"
)


def _records(n: int, start: int = 0):
    for i in range(start, start + n):
        yield {
            "instruction": f"Explain step {i} of the process in plain words.",
            "input": "" if i % 3 else f"Context number {i}.",
            "output": f"Step {i} takes the result of step {i - 1} and adds one more part. " * 4,
        }


def _jsonl(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in _records(n))
    return path


def _peak_kb(*command: str) -> int:
    done = subprocess.run([sys.executable, "-c", PEAK, *command], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=True)  # fmt: skip
    return int(done.stdout.strip())


@pytest.mark.slow
def test_import_memory_stays_flat_as_the_file_grows(tmp_path):
    small, large = (
        _jsonl(tmp_path / "small.jsonl", 10_000),
        _jsonl(tmp_path / "large.jsonl", 100_000),
    )
    peaks = {}
    for path in (small, large):
        db = tmp_path / f"{path.stem}.db"
        peaks[path.stem] = _peak_kb(sys.executable, "-m", "reflection", "import", str(path),
                                    "--db", str(db))  # fmt: skip
    # Ten times the records, the same memory: a chunk at a time, never the file.
    assert peaks["large"] <= 1.2 * peaks["small"], peaks


@pytest.mark.slow
@pytest.mark.both_backends
def test_export_memory_stays_flat_as_the_dataset_grows(tmp_path, store, store_target):
    """On PostgreSQL too: the rows come through a server-side cursor, never all at once."""
    import_dataset(store, _jsonl(tmp_path / "large.jsonl", 100_000), dataset="large")
    import_dataset(store, _jsonl(tmp_path / "small.jsonl", 10_000), dataset="small")
    peaks = {}
    for name in ("small", "large"):
        out = tmp_path / f"{name}.out.json"
        peaks[name] = _peak_kb(sys.executable, "-m", "reflection", "export", "--db",
                               str(store_target), "--dataset", name, "--out", str(out),
                               "--undecided", "original")  # fmt: skip
        assert out.stat().st_size > 0
    assert peaks["large"] <= 1.2 * peaks["small"], peaks


def _write(path: Path, fmt: str, records: list[dict]) -> Path:
    container = {"jsonl": "jsonl", "json": "json", "csv": "csv", "parquet": "parquet"}[fmt]
    return write_records(path, records, container)


BAD_LAST = [  # (container, the bad record, what the message says after the path)
    ("jsonl", {"instruction": "x", "output": 7}, ", line 30000: field 'output' must be text"),
    ("json", {"instruction": "x"}, ", record 30000: missing required field 'output'"),
    (
        "csv",
        {"instruction": "x", "input": "", "output": "y", "history": "[[1]]"},
        ", line 30001: history[0] must be a [user, assistant] pair",
    ),
    ("parquet", {"instruction": None, "output": "y"}, ", record 30000: field 'instruction'"),
]


@pytest.mark.parametrize(("fmt", "bad", "message"), BAD_LAST, ids=[b[0] for b in BAD_LAST])
def test_a_bad_last_record_of_a_large_file_changes_nothing(store, tmp_path, fmt, bad, message):
    import_dataset(store, _jsonl(tmp_path / "seed.jsonl", 10), dataset="target")
    before = list(store.conn.iterdump())
    records = [*_records(29_999, start=100), bad]
    if fmt == "csv":  # a table: every row has every column
        records = [{**r, "history": ""} for r in records[:-1]] + [bad]
    path = _write(tmp_path / f"big.{fmt}", fmt, records)
    with pytest.raises(InputError) as caught:
        import_dataset(store, path, dataset="target")
    assert str(caught.value).startswith(f"{path}{message}"), str(caught.value)
    assert list(store.conn.iterdump()) == before


def test_json_lists_stream_across_chunk_boundaries(tmp_path, monkeypatch):
    """Records cut by the reader's chunk edges (strings, numbers, escapes, non-ASCII text)
    come back whole, and an error names the line and column json.loads would."""
    from reflection.formats import jsonstream

    monkeypatch.setattr(jsonstream, "CHUNK", 7)  # every record spans several chunks
    records = [
        {"instruction": "Zähle bis 3 — «bitte» 😀", "input": "", "output": "1, 2, 3",
         "n": 12345, "f": -1.5e3, "ok": True, "none": None, "q": "a \\\"quoted\\\" \\u00e9"},
        {"instruction": "b" * 50, "output": "c\nd"},
    ]  # fmt: skip
    path = tmp_path / "list.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    assert [s.meta for s in open_dataset(path)][0]["n"] == 12345
    assert [s.instruction for s in open_dataset(path)] == [r["instruction"] for r in records]
    text = path.read_text(encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text(text.replace('"n": 12345', '"n": 12345 13'), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(open_dataset(broken))
    try:
        json.loads(broken.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        expected = f", line {exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
    assert str(caught.value) == f"{broken}{expected}"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet", "hf"])
def test_streamed_export_reads_back_the_same(store, tmp_path, fmt):
    source = _jsonl(tmp_path / "in.jsonl", 9_000)  # more than two of the writers' chunks
    import_dataset(store, source, dataset="d")
    out = tmp_path / (f"out.{fmt}" if fmt != "hf" else "out_hf")
    result = export_dataset(store, "d", out, "alpaca" if fmt.startswith("json") else fmt,
                            undecided="original")  # fmt: skip
    assert result.written == 9_000
    back = import_dataset(store, out, dataset="back", fmt="hf" if fmt == "hf" else None)
    assert (back.added, back.skipped) == (9_000, 0)
    originals = [(s.instruction, s.input, s.output) for s in store.samples(store.dataset("d").id)]
    again = [(s.instruction, s.input, s.output) for s in store.samples(store.dataset("back").id)]
    assert again == originals


def test_search_finds_samples_published_but_not_indexed_yet(store, tmp_path):
    import_dataset(store, _jsonl(tmp_path / "a.jsonl", 30), dataset="d", index=False)
    ds = store.dataset("d")
    assert store.search_backlog() == 30
    unindexed = store.queue_ids(ds.id, QueueQuery(text="step 17"))
    assert store.index_search_backlog() == 30 and store.search_backlog() == 0
    indexed = store.queue_ids(ds.id, QueueQuery(text="step 17"))
    assert unindexed == indexed and len(indexed) >= 1


def _revised(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        for record in _records(n):
            out.write(json.dumps({**record, "output": record["output"] + " Checked."}) + "\n")
    return path


@pytest.mark.slow
def test_import_candidates_memory_stays_flat_as_the_file_grows(tmp_path, store):
    peaks = {}
    for n in (10_000, 100_000):
        db = tmp_path / f"c{n}.db"
        from reflection.store import Store

        with Store(db) as target:
            import_dataset(target, _jsonl(tmp_path / f"o{n}.jsonl", n), dataset="d")
        revised = _revised(tmp_path / f"r{n}.jsonl", n)
        peaks[n] = _peak_kb(sys.executable, "-m", "reflection", "import-candidates", str(revised),
                            "--db", str(db), "--match", "position")  # fmt: skip
        with Store(db) as target:
            assert target.count_candidates() == n
    assert peaks[100_000] <= 1.2 * peaks[10_000], peaks


def test_candidates_not_indexed_yet_are_found_and_deleted_safely(store, tmp_path):
    """Bulk candidates reach the full-text index after their publish: searches read them
    directly meanwhile, and deleting one before it is indexed leaves the index sound."""
    from reflection.records import Candidate

    import_dataset(store, _jsonl(tmp_path / "a.jsonl", 5), dataset="d")
    ds = store.dataset("d")
    ids = store.sample_ids(ds.id)
    with store.staged_candidates() as staged:
        staged.add([(Candidate(sample_id=i, kind="other", output=f"zebra number {i}"), None,
                     f":k:{i}") for i in ids])  # fmt: skip
        with store.transaction():
            assert (
                staged.publish(ds.id, store.start_run("import-candidates").id, "other")["added"]
                == 5
            )
    assert store.search_backlog("candidates") == 5
    assert store.queue_ids(ds.id, QueueQuery(text="zebra")) == ids
    gone = store.candidates_for(ids[0])[0].id
    with store.transaction():
        store.conn.execute("DELETE FROM candidates WHERE id = ?", [gone])
    store.index_search_backlog()
    store.conn.execute("INSERT INTO candidates_fts (candidates_fts) VALUES ('integrity-check')")
    assert store.queue_ids(ds.id, QueueQuery(text="zebra")) == ids[1:]
    store.add_candidate(Candidate(sample_id=ids[0], kind="edit", output="a zebra again"))
    assert store.search_backlog("candidates") == 0  # one at a time: indexed at once
    assert store.queue_ids(ds.id, QueueQuery(text="zebra")) == ids


# Reads every sample of a file and prints nothing: the reader's own peak, without a store.
READ_ALL = (
    "import sys\n"
    "from reflection.formats import open_dataset\n"
    "sum(1 for _ in open_dataset(sys.argv[1]))\n"
)


def _noisy_records(n: int):
    """Records whose text does not compress: a columnar file's bytes grow with its rows."""
    rng = random.Random(5)
    for i in range(n):
        yield {"instruction": f"Item {i}: {rng.randbytes(60).hex()}", "input": "",
               "output": rng.randbytes(200).hex()}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_columnar_files_are_read_in_flat_memory(tmp_path, fmt):
    """Parquet with pyarrow's defaults kept every column chunk it had read (pre-buffering):
    a 1M-record file took the import to 735 MB, 313 MB at 200k."""
    peaks = {}
    for n in (20_000, 200_000):
        path = write_records(tmp_path / (f"r{n}.parquet" if fmt == "parquet" else f"r{n}"),
                             _noisy_records(n), fmt)  # fmt: skip
        peaks[n] = _peak_kb(sys.executable, "-c", READ_ALL, str(path))
    assert peaks[200_000] <= 1.2 * peaks[20_000], peaks
