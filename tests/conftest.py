"""Shared fixtures: real SQLite files in tmp_path, the real Alpaca data (a subset shipped in
tests/data, so the suite needs nothing outside the clone)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest
from hypothesis import settings

from reflection.store import Store

# Property tests check properties, not time: a busy machine must not fail one on hypothesis'
# default 200 ms deadline per example (speed lives in bench/).
settings.register_profile("reflection", deadline=None)
settings.load_profile("reflection")

# Under pytest-xdist (`.ci/run`: two workers on two cores) PyTorch gets one thread per worker.
# With its default of one per core, two workers' OpenMP threads fight over both cores: the
# student end-to-end test took 112 s beside a busy core with two threads, 72 s with one.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
# 312 real Stanford Alpaca pairs (CC BY-NC 4.0): see tests/data/LICENSE-alpaca.md.
ALPACA_PATH = ROOT / "tests" / "data" / "alpaca_subset.json"


@cache
def load_alpaca() -> list[dict]:
    """The Alpaca subset, read once (read-only: copy before changing). Tests derive every
    count from it, so a redrawn subset needs no edits to them."""
    return json.loads(ALPACA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Derived files (a dequantized student) go to this session's temporary folder, never to
    the machine's ~/.cache; subprocesses inherit it, so they share it, and so do the xdist
    workers of one run (the cache's writes are atomic). Restored at the end."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "reflection-cache"
    folder.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REFLECTION_CACHE", str(folder))
        yield


@pytest.fixture(autouse=True)
def _environment():
    """Whatever a test, or the code it calls, sets in os.environ is undone after it, so no test
    depends on the order tests run in."""
    before = dict(os.environ)
    yield
    for name in os.environ.keys() - before.keys():
        del os.environ[name]
    for name, value in before.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


BACKENDS = ("sqlite", "postgresql")


HEAVY = ("student", "oracle", "browser")  # markers of tests that take tens of seconds


def pytest_collection_modifyitems(config, items):
    """Files with model or browser tests run first. `.ci/run` deals whole files to two
    pytest-xdist workers in this order (--dist loadfile): a long file dealt last would run
    alone on one worker while the other idles."""
    heavy = {i.path for i in items if any(i.get_closest_marker(m) for m in HEAVY)}
    order = {item: n for n, item in enumerate(items)}
    items.sort(key=lambda item: (item.path not in heavy, order[item]))


def pytest_generate_tests(metafunc):
    """Modules marked `both_backends` run every test that uses `store` (or `store_target`)
    on SQLite and on PostgreSQL: one fixture parameter, not copies of the tests."""
    uses = {"store", "store_target"} & set(metafunc.fixturenames)
    if uses and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request):
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_cluster():
    """A throw-away PostgreSQL cluster on 127.0.0.1 for the whole session (see pg_cluster.py)."""
    from pg_cluster import PgCluster, pg_bin

    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg")
    cluster = PgCluster(bindir).start()
    try:
        cluster.make_template()
        yield cluster
    finally:
        # The app pages tested in this process started job supervisors on these databases:
        # stop them before the server goes, or they would look for it until the process ends.
        from reflection.jobs import close_all

        close_all()
        cluster.stop()


@pytest.fixture
def store_target(backend, tmp_path, request):
    """Where a test's store lives: a SQLite file, or a fresh PostgreSQL database's URL."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_cluster").new_database()
    return str(tmp_path / "test.db")


@pytest.fixture
def store(store_target):
    with Store(store_target) as s:
        yield s


@pytest.fixture(scope="session")
def student():
    """The SmolLM2 student on CPU, loaded once for the session (skips where the GGUF or
    torch is missing)."""
    pytest.importorskip("torch")
    from reflection.errors import ConfigError
    from reflection.scoring.student import load_student, smollm2_path

    try:
        smollm2_path()
    except ConfigError as exc:
        pytest.skip(str(exc))
    return load_student("smollm2", "cpu")


@pytest.fixture(scope="session")
def alpaca_records() -> list[dict]:
    """The real Alpaca pairs of tests/data (read-only: copy before changing)."""
    return load_alpaca()


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
