"""`reflection migrate`: a whole store copied SQLite -> PostgreSQL -> SQLite, proven equal."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from reflection.cli import main
from reflection.demo import build_demo
from reflection.errors import StoreError
from reflection.records import Review, Sample
from reflection.store import Store
from reflection.store.copy import TABLES, check_table, copy_store, digest, table_names
from reflection.store.queue import QueueQuery


@pytest.fixture
def demo(tmp_path):
    """The demo store, plus rows in the team tables: an account, assignments, a review."""
    path = tmp_path / "demo.db"
    build_demo(path)
    with Store(path) as store:
        data = store.dataset("demo")
        ids = store.sample_ids(data.id)
        store.add_account("ana", "reviewer", "password", "$argon2id$not-a-real-hash")
        store.add_assignments(data.id, [(ids[0], "ana"), (ids[1], "ana")])
        store.add_review(Review(sample_id=ids[0], decision="reject", annotator="ana"))
        store.add_audit_event("admin", "assign", "ana", dataset_id=data.id)
    return path


def test_every_table_of_a_new_store_is_copied(store):
    assert table_names(store) == set(TABLES)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_sqlite_to_postgresql_and_back_is_lossless(demo, tmp_path, store_target):
    back = tmp_path / "back.db"
    with Store(demo) as source, Store(store_target) as pg:
        checks = copy_store(source, pg)
        assert all(c.equal for c in checks), [c for c in checks if not c.equal]
        assert {c.table for c in checks if c.source_rows} >= {"samples", "candidates", "scores",
                                                              "reviews", "accounts", "audit",
                                                              "assignments", "reviewer_state"}  # fmt: skip
        with Store(back) as copy:
            assert all(c.equal for c in copy_store(pg, copy))
    with Store(demo) as original, Store(back) as copy:
        assert all(check_table(original, copy, table).equal for table in TABLES)
        # The copy works as a store: search finds text, new ids follow the copied ones.
        data = copy.dataset("demo")
        word = copy.sample(copy.sample_ids(data.id)[0]).instruction.split()[0]
        assert copy.queue_ids(data.id, QueueQuery(text=word))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_postgresql_copy_works_as_a_store(demo, store_target):
    index_sql = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    with Store(demo) as source, Store(store_target) as pg:
        blank = sorted(tuple(row) for row in pg.conn.execute(index_sql))
        copy_store(source, pg)
        # The indexes dropped for the copy are all back, as they were.
        assert sorted(tuple(row) for row in pg.conn.execute(index_sql)) == blank
        assert any("gin" in definition for _, definition in blank)
        data = pg.dataset("demo")
        # The kept counts (their triggers are off while copying) equal the source's and a
        # recount, and follow the writes after the copy.
        kept = {name: n for name, n in pg.tallies(data.id).items() if n}
        assert kept == {name: n for name, n in source.tallies(data.id).items() if n}
        assert kept["samples"] == len(pg.sample_ids(data.id))
        assert any(name.startswith("flag:") and n for name, n in kept.items())
        assert pg.tally_check() == []
        before = max(pg.sample_ids(data.id))
        added, _ = pg.add_samples(data.id, [Sample(instruction="a new one", output="")])
        assert added == 1 and max(pg.sample_ids(data.id)) > before
        assert pg.tally_check() == [] and pg.count_samples(data.id) == kept["samples"] + 1
        word = pg.sample(pg.sample_ids(data.id)[0]).instruction.split()[0]
        assert pg.queue_ids(data.id, QueueQuery(text=word))
        for table in ("samples", "candidates"):  # every row's words, the new one's too (m024)
            assert pg.count(f"SELECT count(*) FROM {table}_fts_vectors") == pg.count(
                f"SELECT count(*) FROM {table}"
            )
        assert pg.account("ANA") is not None  # names compare without case, as on SQLite


def test_a_store_with_rows_is_never_a_destination(demo, tmp_path):
    with Store(demo) as source, Store(demo) as same, pytest.raises(StoreError, match="not empty"):
        copy_store(source, same)


def test_the_digest_sees_one_changed_value(demo):
    with Store(demo) as store:
        names = ["id", "instruction"]
        before = digest(store, "samples", names)
        store.conn.execute("UPDATE samples SET instruction = instruction || '.' WHERE id = 1")
        after = digest(store, "samples", names)
    assert before[0] == after[0] and before[1] != after[1]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_command_prints_counts_and_digests_and_never_the_password(demo, store_target):
    url = store_target.replace("postgres@", "postgres:s3cret@")  # trust auth ignores it
    result = CliRunner().invoke(main, ["migrate", "--from", str(demo), "--to", url])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert f"All {len(TABLES)} tables equal" in result.output
    assert "samples" in result.output and "equal" in result.output
    again = CliRunner().invoke(main, ["migrate", "--from", str(demo), "--to", url])
    assert again.exit_code == 1 and "not empty" in again.output and "s3cret" not in again.output


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_copy_into_postgresql_is_analyzed_for_the_planner(demo, store_target):
    with Store(demo) as source, Store(store_target) as pg:
        copy_store(source, pg)
        analyzed = pg.conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('samples', 'scores')"
            " AND coalesce(last_analyze, last_autoanalyze) IS NOT NULL"
        ).fetchone()[0]
    assert analyzed == 2


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_value_postgresql_cannot_hold_names_its_table_and_row_and_copies_nothing(
    demo, store_target
):
    """PostgreSQL text cannot hold NUL, which SQLite's can: the copy stops with the table and
    row named, and the destination stays blank (one transaction)."""
    with Store(demo) as source:
        data = source.dataset("demo")
        source.add_samples(data.id, [Sample(instruction="a\x00b", output="ok")])
        rows = source.conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    with Store(demo) as source, Store(store_target) as pg:
        with pytest.raises(StoreError, match=rf"table samples, row {rows}: .*0x00"):
            copy_store(source, pg)
        assert pg.is_blank()
