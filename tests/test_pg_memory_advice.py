"""A PostgreSQL server whose shared buffers are small for its database is pointed out to its
admin when the store is copied into it and when the app starts on it.

At 1,000,000 samples, PostgreSQL's default 128 MB of shared buffers made a rare-word search
read its pages from the operating system on every run (82-96 ms against 26-34 ms with 4 GB).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.demo import build_demo
from reflection.store import Store
from reflection.store.base import memory_advice_for

MB, GB = 2**20, 2**30


def test_advice_only_where_the_buffers_are_small_for_the_database():
    said = memory_advice_for(128 * MB, 10 * GB)
    assert said is not None
    assert "shared_buffers is 128 MB for a 10.0 GB database" in said
    assert "a quarter of the server's memory" in said
    assert memory_advice_for(6 * GB, 10 * GB) is None  # a quarter of memory, as advised
    assert memory_advice_for(128 * MB, 300 * MB) is None  # a small store fits
    assert memory_advice_for(128 * MB, 600 * MB) is not None  # past four times the buffers
    assert memory_advice_for(2 * GB, 100 * GB) is None  # 2 GB is enough to say nothing
    assert memory_advice_for(1 * GB, 100 * GB) is not None
    assert "128 kB" in (memory_advice_for(128 * 1024, 20 * MB) or "")


def test_sqlite_has_no_advice(tmp_path):
    with Store(tmp_path / "s.db") as store:
        assert store.memory_advice() is None


@pytest.fixture
def small_buffers():
    """A cluster of its own with 2 MB of shared buffers (PostgreSQL's least, 128 kB, is too
    few for the copy), so that even the demo store is four times larger."""
    pytest.importorskip("psycopg")
    from pg_cluster import PgCluster, pg_bin

    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = PgCluster(bindir, {"shared_buffers": "2MB"}).start()
    try:
        cluster.admin("CREATE DATABASE team")
        yield cluster.url("team")
    finally:
        cluster.stop()


def test_migrate_and_app_tell_the_admin_of_small_shared_buffers(tmp_path, small_buffers):
    demo = tmp_path / "demo.db"
    build_demo(demo)
    copied = CliRunner().invoke(main, ["migrate", "--from", str(demo), "--to", small_buffers])
    assert copied.exit_code == 0, copied.output
    assert "Note: PostgreSQL's shared_buffers is 2 MB for a " in copied.output
    with Store(small_buffers) as store:
        assert store.memory_advice() == copied.output.split("Note: ")[1].strip()
    # The app says it before anything else: here it then refuses an open address without
    # sign-in, so no server starts.
    served = CliRunner().invoke(main, ["app", "--db", small_buffers, "--host", "0.0.0.0"])
    assert served.exit_code != 0 and "refusing to serve" in served.output
    assert "Note: PostgreSQL's shared_buffers is 2 MB" in served.output


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_tests_own_server_with_default_buffers_says_nothing_for_the_demo(
    tmp_path, store_target
):
    demo = tmp_path / "demo.db"
    build_demo(demo)
    copied = CliRunner().invoke(main, ["migrate", "--from", str(demo), "--to", store_target])
    assert copied.exit_code == 0, copied.output
    assert "Note:" not in copied.output
    with Store(store_target) as store:  # the real numbers: initdb's 128 MB against a few MB
        shared, size = store.conn.execute(
            "SELECT pg_size_bytes(current_setting('shared_buffers')),"
            " pg_database_size(current_database())"
        ).fetchone()
        assert 0 < shared <= 128 * MB and 0 < size < 4 * shared
        assert store.memory_advice() is None
