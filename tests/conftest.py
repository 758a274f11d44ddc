"""Shared fixtures: real SQLite files in tmp_path, the real Alpaca data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reflection.store import Store

ROOT = Path(__file__).resolve().parent.parent
ALPACA_PATH = ROOT.parent / "shared" / "data" / "alpaca_cherry_3k.json"


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Derived files (a dequantized student) go to this session's temporary folder, never to
    the machine's ~/.cache; subprocesses inherit it, so they share it."""
    os.environ["REFLECTION_CACHE"] = str(tmp_path_factory.mktemp("reflection-cache"))
    yield


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "test.db") as s:
        yield s


@pytest.fixture(scope="session")
def alpaca_records() -> list[dict]:
    """All 3,111 real Alpaca pairs (read-only: copy before changing)."""
    if not ALPACA_PATH.exists():
        pytest.skip(f"{ALPACA_PATH} is missing")
    return json.loads(ALPACA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def _oracle_server():
    from oracle_server import OracleServer

    with OracleServer() as server:
        yield server


@pytest.fixture
def fake_oracle(_oracle_server):
    """The fault-injecting OpenAI-compatible test server (tests/oracle_server.py), reset."""
    from oracle_server import DEFAULTS

    _oracle_server.configure(**DEFAULTS)
    _oracle_server.reset()
    return _oracle_server


def screenshot_target(name: str, fallback_dir: Path) -> Path:
    """Where a browser test saves a screenshot: docs/NAME (the README's pictures) when
    REFLECTION_SCREENSHOTS=1, else a temporary folder, so a test run leaves the tree clean."""
    if os.environ.get("REFLECTION_SCREENSHOTS") == "1":
        return ROOT / "docs" / name
    return fallback_dir / name
