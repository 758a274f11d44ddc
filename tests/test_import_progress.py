"""What an import tells as it goes (ten million records take minutes): the library's phases
and counts, and the command line's display of them, live on a terminal, every 5 s in logs."""

from __future__ import annotations

import json

import pytest

from reflection import Store
from reflection.cli.common import work_progress
from reflection.export.curated import export_dataset
from reflection.ingest.adopt import import_candidates
from reflection.ingest.datasets import CHUNK, import_dataset


def _records(n: int):
    for i in range(n):
        yield {"instruction": f"Explain step {i}.", "input": "", "output": f"Step {i} is done."}


def _told(events: list):
    def tell(phase: str, done: int, total: int | None) -> None:
        events.append((phase, done, total))

    return tell


def test_an_import_tells_each_phase_with_its_counts(tmp_path):
    n = 2 * CHUNK + 123
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(n)), encoding="utf-8")
    events: list = []
    with Store(tmp_path / "s.db") as store:
        import_dataset(store, path, progress=_told(events))
        phases = [phase for phase, _, _ in events]
        # read a chunk at a time, then one publish, then the index, then done
        assert phases[:3] == ["read"] * 3 and phases[3] == "publish" and phases[-1] == "done"
        assert [done for _, done, _ in events[:4]] == [CHUNK, 2 * CHUNK, n, n]
        index = [(done, total) for phase, done, total in events if phase == "index"]
        assert index and index[-1] == (n, n)  # the bound is exact after a first import
        assert all(total is not None and done <= total for done, total in index)
        assert events[-1] == ("done", n, None)
        # import-candidates, its records aligned by position
        revised = tmp_path / "revised.jsonl"
        revised.write_text(
            "".join(json.dumps(dict(r, output=r["output"] + " Checked.")) + "\n"
                    for r in _records(n)), encoding="utf-8",
        )  # fmt: skip
        events.clear()
        import_candidates(store, revised, match="position", progress=_told(events))
        reads = [done for phase, done, _ in events if phase == "read"]
        assert reads == sorted(reads) and reads[-1] == n
        assert events[len(reads)] == ("publish", n, None) and events[-1] == ("done", n, None)
        assert [e for e in events if e[0] == "index"][-1][1] == n


def test_an_export_tells_the_samples_gone_through(tmp_path):
    n = 3 * 5000 + 77
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(n)), encoding="utf-8")
    events: list = []
    with Store(tmp_path / "s.db") as store:
        import_dataset(store, path, dataset="set")
        result = export_dataset(store, "set", tmp_path / "out.jsonl", undecided="original",
                                progress=_told(events))  # fmt: skip
    writes = [(done, total) for phase, done, total in events if phase == "write"]
    assert len(writes) == 3 and all(total == n for _, total in writes)
    assert [done for done, _ in writes] == sorted(done for done, _ in writes)
    assert writes[-1][0] >= 3 * 5000
    assert events[-1] == ("done", result.written, None) and result.written == n


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("live", [False, True])
def test_the_command_line_shows_it_live_or_every_five_seconds(capsys, live):
    clock = Clock()
    show = work_progress("big.jsonl", live=live, clock=clock)
    for step in range(1, 21):  # 20 chunks, 1 s apart
        clock.now += 1
        show("read", step * 5000, None)
    clock.now += 1
    show("publish", 100_000, None)
    clock.now += 60  # the one transaction
    show("index", 50_000, 100_000)
    show("index", 100_000, 100_000)
    show("done", 100_000, None)
    clock.now += 10
    show("write", 40_000, 100_000)  # an export's
    err = capsys.readouterr().err
    if live:
        lines = err.split("\r\033[K")[1:]
        assert len(lines) == 24  # every call
        assert lines[0] == "big.jsonl: 5,000 records read and checked (5,000/s)"
        assert lines[20] == "big.jsonl: adding 100,000 records in one transaction"
        assert lines[22] == "big.jsonl: search index, 100,000 of about 100,000 rows\n"
        assert lines[23] == "big.jsonl: 40,000 of 100,000 samples exported"
    else:
        assert err.splitlines() == [  # a line once 5 s have passed since the last
            "big.jsonl: 25,000 records read and checked (5,000/s)",
            "big.jsonl: 50,000 records read and checked (5,000/s)",
            "big.jsonl: 75,000 records read and checked (5,000/s)",
            "big.jsonl: 100,000 records read and checked (5,000/s)",
            "big.jsonl: search index, 50,000 of about 100,000 rows",
            "big.jsonl: 40,000 of 100,000 samples exported",
        ]
