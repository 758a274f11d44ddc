"""Ctrl-C stops a long SQLite statement at once, not when it ends: the publish of a
ten-million-record import is one INSERT of minutes. Each case runs in a child process that
sends itself SIGINT once the publish has started, and reports what it saw."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reflection import Store

ROOT = Path(__file__).resolve().parent.parent
# Wraps the publish so that SIGINT arrives while its INSERT runs, then imports the file,
# through the library (`library`) or the command line (`cli`).
CHILD = """
import os, signal, sys, threading, time
from reflection.store import staging

publish = staging.Staging._insert

def interrupted_insert(self, *args):
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    try:
        return publish(self, *args)
    finally:
        print(f"insert ended after {time.monotonic() - started:.2f} s", file=sys.stderr)

staging.Staging._insert = interrupted_insert
how, path, db = sys.argv[1:]
if how == "cli":
    from reflection.cli import main
    main(["import", path, "--db", db])
else:
    from reflection import Store
    from reflection.errors import is_interrupted
    from reflection.ingest.datasets import import_dataset
    with Store(db) as store:
        try:
            import_dataset(store, path, dataset="big")
        except BaseException as exc:
            print(type(exc).__name__, getattr(exc, "sqlite_errorcode", None), is_interrupted(exc))
"""


def _big(tmp_path: Path, n: int = 60_000) -> Path:
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            record = {
                "instruction": f"Explain step {i}.",
                "input": "",
                "output": f"Step {i}. " * 40,
            }
            out.write(json.dumps(record) + "\n")
    return path


def _child(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True,
        cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


def _samples(db: Path) -> int:
    with Store(db) as store:
        return int(store.scalar("SELECT count(*) FROM samples"))


def test_ctrl_c_stops_the_publishing_statement_itself(tmp_path):
    db = tmp_path / "s.db"
    done = _child("library", _big(tmp_path), db)
    # The INSERT itself was stopped (SQLITE_INTERRUPT, 9), not a KeyboardInterrupt raised
    # after it had run to its end; and the import added nothing.
    assert done.stdout.strip() == "OperationalError 9 True", done.stderr
    assert _samples(db) == 0
    with Store(db) as store:
        assert store.tally_check() == []
        assert store.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'") > 0


def test_ctrl_c_on_the_command_line_aborts_cleanly(tmp_path):
    db = tmp_path / "s.db"
    done = _child("cli", _big(tmp_path), db)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Aborted!" in done.stderr, done.stderr
    assert not db.exists()  # the store it created, blank, is removed
