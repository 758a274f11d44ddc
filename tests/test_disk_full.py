"""A full disk, wherever it strikes: an import adds nothing and says so (not the driver's
traceback), the store keeps working on the same connection, an export leaves no partial file,
and dropping an import's staging gives its space back at once.

SQLite's own page limit (`max_page_count`) raises the same SQLITE_FULL a full disk does, so
most of these run anywhere; the command-line ones fill a real small disk (a tmpfs, which needs
root to mount) and are skipped where none can be mounted."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ALPACA_PATH

from reflection import Store
from reflection.cli import main
from reflection.errors import DiskFullError, is_disk_full
from reflection.formats.writers import write_records
from reflection.ingest.adopt import import_candidates
from reflection.ingest.datasets import import_dataset
from reflection.store.queue import QueueQuery
from reflection.store.space import SAMPLES_NEED, index_space, space_need

ROOT = Path(__file__).resolve().parent.parent


def _records(n: int, start: int = 0):
    for i in range(start, start + n):
        yield {
            "instruction": f"Explain step {i} of the process in plain words.",
            "input": "",
            "output": f"Step {i} takes the result of step {i - 1} and adds one more part. " * 8,
        }


def _jsonl(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in _records(n))
    return path


def _state(store: Store) -> tuple:
    """What an import that added nothing must leave as it was."""
    return (
        store.scalar("SELECT count(*) FROM samples"),
        store.count_candidates(),
        store.scalar("SELECT count(*) FROM scores"),
        [tuple(r) for r in store.conn.execute("SELECT id, kind, status FROM runs ORDER BY id")],
        [r[0] for r in store.conn.execute("SELECT name FROM sqlite_master ORDER BY name")],
        store.scalar("PRAGMA integrity_check"),
    )


def _limit_store(store: Store, pages: int) -> None:
    """Let the store file grow by `pages` pages only (SQLITE_FULL past them)."""
    (count,) = store.conn.execute("PRAGMA main.page_count").fetchone()
    store.conn.execute(f"PRAGMA main.max_page_count = {count + pages}")


def _unlimit_store(store: Store) -> None:
    store.conn.execute("PRAGMA main.max_page_count = 4294967294")


def test_a_full_disk_is_told_apart_from_other_errors(tmp_path):
    with pytest.raises(OSError) as written, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")  # the kernel's always-full device: a real ENOSPC
    assert is_disk_full(written.value)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full_db:
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 4000,)] * 10)
    assert is_disk_full(full_db.value)
    with pytest.raises(sqlite3.OperationalError) as other:
        conn.execute("SELECT * FROM missing")
    assert not is_disk_full(other.value)
    # PostgreSQL's, by SQLSTATE (psycopg's own classes; a server on a full disk is not made
    # here: it may stop on its write-ahead log rather than fail the statement).
    psycopg_errors = pytest.importorskip("psycopg.errors")
    assert is_disk_full(psycopg_errors.DiskFull("could not extend file"))
    assert not is_disk_full(psycopg_errors.UniqueViolation("duplicate key"))


def test_staging_on_a_full_disk_adds_nothing_and_the_store_goes_on(tmp_path):
    path = _jsonl(tmp_path / "big.jsonl", 3000)
    with Store(tmp_path / "s.db") as store:
        import_dataset(store, ALPACA_PATH, dataset="alpaca")
        before = _state(store)
        # SQLite's temporary database, where the records are staged, full after 50 pages.
        store.conn.execute("PRAGMA temp.max_page_count = 50")
        with pytest.raises(DiskFullError) as info:
            import_dataset(store, path, dataset="big")
        message = str(info.value)
        assert f"while importing {path}: nothing was added to the store" in message
        assert "SQLite's temporary folder" in message and "SQLITE_TMPDIR" in message
        assert _state(store) == before
        # The same Store goes on, on a fresh connection (the limit went with the old one):
        # the same file now imports whole, and every kept count agrees with the rows.
        result = import_dataset(store, path, dataset="big")
        assert result.added == 3000
        assert store.tally_check() == []


def test_publishing_on_a_full_disk_adds_nothing(tmp_path):
    path = _jsonl(tmp_path / "big.jsonl", 3000)
    with Store(tmp_path / "s.db") as store:
        import_dataset(store, ALPACA_PATH, dataset="alpaca")
        before = _state(store)
        _limit_store(store, 40)  # staged whole, then the publishing transaction runs out
        with pytest.raises(DiskFullError, match="nothing was added to the store"):
            import_dataset(store, path, dataset="big")
        assert _state(store) == before  # the count triggers dropped for the publish are back
        _unlimit_store(store)
        assert import_dataset(store, path, dataset="big").added == 3000
        assert store.tally_check() == []


def test_import_candidates_on_a_full_disk_adds_nothing(tmp_path, alpaca_records):
    revised = [dict(r, output=r["output"] + " Checked step by step.") for r in alpaca_records]
    path = tmp_path / "revised.json"
    path.write_text(json.dumps(revised), encoding="utf-8")
    with Store(tmp_path / "s.db") as store:
        import_dataset(store, ALPACA_PATH, dataset="alpaca")
        before = _state(store)
        _limit_store(store, 10)
        with pytest.raises(DiskFullError, match=f"while importing {path}: nothing was added"):
            import_candidates(store, path, dataset="alpaca", match="position")
        assert _state(store) == before
        _unlimit_store(store)
        result = import_candidates(store, path, dataset="alpaca", match="position")
        assert result.candidates_added == len(revised)
        assert store.tally_check() == []


def test_an_index_that_runs_out_keeps_the_samples_and_catches_up_later(tmp_path):
    path = _jsonl(tmp_path / "big.jsonl", 3000)
    db = tmp_path / "s.db"
    with Store(db) as store:
        import_dataset(store, path, dataset="big", index=False)
        _limit_store(store, 2)
        with pytest.raises(DiskFullError) as info, index_space(path, 3000):
            store.index_search_backlog()
        assert "the 3,000 rows were added" in str(info.value)
        assert "`reflection index`" in str(info.value)
        assert store.search_backlog() > 0
        ds = store.dataset("big")
        # Searches find them meanwhile (the backlog is read directly).
        found = store.queue_ids(ds.id, QueueQuery(text="2999"), limit=5)
        assert len(found) >= 1
    shown = CliRunner().invoke(main, ["index", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "Indexed 3,000 rows for search" in shown.output
    assert "up to date" in CliRunner().invoke(main, ["index", "--db", str(db)]).output
    with Store(db) as store:
        assert store.search_backlog() == 0


def test_dropping_the_staging_gives_its_space_back(tmp_path):
    path = _jsonl(tmp_path / "big.jsonl", 3000)
    with Store(tmp_path / "s.db") as store:
        import_dataset(store, path, dataset="big")
        # The staging took ~1,000 pages of SQLite's temporary file; dropped, they are gone
        # from it, not kept free inside it until the connection closes.
        pages, free = (
            store.scalar(f"PRAGMA temp.{name}") for name in ("page_count", "freelist_count")
        )
        assert free == 0 and pages < 50


@pytest.mark.parametrize("container", ["jsonl", "csv", "parquet"])
def test_a_failed_write_leaves_no_file_behind(tmp_path, container):
    def records():
        yield from _records(2000)
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DiskFullError, match="nothing was written there"):
        write_records(out / f"set.{container}", records(), container)
    assert list(out.iterdir()) == []  # neither the output nor a spool of its records


def test_the_space_an_import_needs_is_said_beforehand(tmp_path):
    path = _jsonl(tmp_path / "big.jsonl", 300)
    with Store(tmp_path / "s.db") as store:
        need = space_need(store, path, SAMPLES_NEED)
        assert need is not None
        size = path.stat().st_size
        assert (need.size, need.temp_bytes, need.store_bytes) == (
            size, int(size * SAMPLES_NEED[0]), int(size * SAMPLES_NEED[1]),
        )  # fmt: skip
        assert need.store_dir == tmp_path and need.note(path) is None  # room enough here


# --- a real small disk -------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs; skipped where mounting is not allowed (it needs root)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode:
        pytest.skip(f"no small disk to fill here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _cli(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reflection", *map(str, args)], capture_output=True, text=True,
        cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300, check=False,
    )  # fmt: skip


def test_import_with_a_small_temporary_folder_says_so_and_adds_nothing(tmp_path, small_disk):
    path = _jsonl(tmp_path / "big.jsonl", 10_000)  # ~7 MB of JSONL, staged in 4 MB
    db = tmp_path / "s.db"
    assert _cli("import", ALPACA_PATH, "--db", db).returncode == 0
    done = _cli("import", path, "--db", db, env={"SQLITE_TMPDIR": str(small_disk)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    note, error = done.stderr.strip().split("\n")
    assert note.startswith(f"Note: importing {path}") and f"folder {small_disk}" in note
    assert error.startswith(f"Error: The disk filled up while importing {path}: nothing was")
    assert "set SQLITE_TMPDIR to a folder on a larger disk" in error
    with Store(db) as store:
        assert store.scalar("SELECT count(*) FROM samples") == len(
            json.loads(ALPACA_PATH.read_text())
        )
    # import-candidates the same way, its candidates staged in the small folder.
    assert _cli("import", path, "--db", db, "--dataset", "big").returncode == 0
    revised = tmp_path / "revised.jsonl"
    with open(revised, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(dict(r, output=r["output"] + " Checked.")) + "\n"
                       for r in _records(10_000))  # fmt: skip
    with Store(db) as store:
        before = _state(store)
    done = _cli("import-candidates", revised, "--db", db, "--dataset", "big", "--match",
                "position", env={"SQLITE_TMPDIR": str(small_disk)})  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    note, error = done.stderr.strip().split("\n")
    assert note.startswith(f"Note: importing {revised}")
    assert error.startswith(f"Error: The disk filled up while importing {revised}: nothing")
    with Store(db) as store:
        assert _state(store) == before


def test_import_into_a_full_store_folder_adds_nothing(tmp_path, small_disk):
    path = _jsonl(tmp_path / "big.jsonl", 10_000)
    done = _cli("import", path, "--db", small_disk / "new.db")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Error: The disk filled up while importing" in done.stderr
    assert f"beside the store in {small_disk}" in done.stderr
    assert list(small_disk.iterdir()) == []  # the new store, blank, removed with its log
    # A store already there: the publishing transaction runs out of disk, and SQLite rolls
    # it back whole, the count triggers it had dropped included.
    db = small_disk / "s.db"
    assert _cli("import", ALPACA_PATH, "--db", db).returncode == 0
    with Store(db) as store:
        before = _state(store)
    done = _cli("import", path, "--db", db)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    with Store(db) as store:
        assert _state(store) == before
        assert store.tally_check() == []


def test_export_to_a_full_disk_says_so_and_leaves_nothing(tmp_path, small_disk):
    path = _jsonl(tmp_path / "big.jsonl", 10_000)
    db = tmp_path / "s.db"
    assert _cli("import", path, "--db", db).returncode == 0
    for name in ("out.jsonl", "out.parquet"):
        done = _cli("export", "--db", db, "--undecided", "original", "--out", small_disk / name)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith(
            f"Error: The disk filled up while writing {small_disk / name}: nothing was written"
        )
        assert list(small_disk.iterdir()) == []
    with Store(db) as store:
        [run] = [r for r in store.runs("export")][-1:]
        assert run.status == "failed" and "disk filled up" in (run.error or "")
