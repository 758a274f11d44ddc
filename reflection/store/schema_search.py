"""Migration m021: the full-text indexes keep which rows hold a word, not where in them.

The review queue's search asks for rows holding every word the user typed, each as a prefix
(`queue.fts_query`): it never needs positions, which FTS5's default (`detail=full`) stores
for every token. Without them (`detail=none`) building the index at 200,000 samples took
4.2 s instead of 8.1, and it is a fifth of the size (20 MB instead of 94). The indexes are
built again here, whole, and `search_backlog` then counts every row as indexed. SQLite
only: PostgreSQL searches a `tsvector` GIN index.
"""

from __future__ import annotations

import contextlib
import sqlite3

from .connection import POSTGRESQL, Connection
from .postgres import SEARCH_VECTOR

# FTS hash tables grow to this before writing a segment (as m014 set on the old tables).
HASH_BYTES = 16 << 20


def m021_search_without_positions(db: Connection) -> None:
    """Full-text indexes without token positions (`detail=none`), rebuilt."""
    if str(getattr(db, "dialect", "sqlite")) == POSTGRESQL:
        return
    for table in ("samples", "candidates"):
        # The triggers that write to the index name it, and find the new one by that name.
        db.execute(f"DROP TABLE {table}_fts")
        db.execute(
            f"CREATE VIRTUAL TABLE {table}_fts USING fts5(instruction, input, output,"
            f" content='{table}', content_rowid='id', tokenize='unicode61 remove_diacritics 2',"
            " detail=none)"
        )
        with contextlib.suppress(sqlite3.OperationalError):  # an SQLite without the option
            db.execute(
                f"INSERT INTO {table}_fts ({table}_fts, rank) VALUES ('hashsize', {HASH_BYTES})"
            )
        db.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')")
        db.execute(
            f"UPDATE search_backlog SET indexed_upto = (SELECT coalesce(max(id), 0) FROM {table})"
            " WHERE name = ?",
            [table],
        )


# Each table's vectors: its id (and a candidate's sample), and the words of its text.
VECTOR_TABLES = {"samples": ("id",), "candidates": ("id", "sample_id")}
_PG_VECTORS = """
CREATE FUNCTION {table}_fts_vectors() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {table}_fts_vectors ({keys}, vec) SELECT {keys}, {vector} FROM new_rows r;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM {table}_fts_vectors WHERE id IN (SELECT id FROM old_rows);
  ELSE
    UPDATE {table}_fts_vectors SET vec = {new_vector} WHERE id = NEW.id;
  END IF;
  RETURN NULL;
END
$body$
"""


def fill_search_vectors(db: Connection) -> None:
    """Every row's vector, from the rows (m024, and `migrate` after a copy with triggers off)."""
    for table, keys in VECTOR_TABLES.items():
        listed = ", ".join(keys)
        db.execute(
            f"INSERT INTO {table}_fts_vectors ({listed}, vec)"
            f" SELECT {listed}, {SEARCH_VECTOR.format(row='r')} FROM {table} r"
        )


def m024_search_vectors(db: Connection) -> None:
    """PostgreSQL: each row's words kept in a table of their own, not only in a GIN index over
    an expression. A search for a common word ("explain", in 12 % of the rows) at 1,000,000
    samples took 60 s: the index's bitmap grew past work_mem, went lossy, and every row of its
    pages had its text tokenized again to check it. Kept vectors are checked as they are, and
    a window of a common word's samples is found by probing samples in queue order
    (`SEARCH_PROBE`), which the expression could only do by tokenizing each sample."""
    if str(getattr(db, "dialect", "sqlite")) != POSTGRESQL:
        return
    # Writers wait (readers do not) until the vectors and their triggers are in place: a row
    # written meanwhile would have neither. At 1M samples this took 400 s, once.
    db.execute("LOCK TABLE samples, candidates IN SHARE MODE")
    db.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for table, keys in VECTOR_TABLES.items():
        columns = " ".join(f"{key} BIGINT NOT NULL," for key in keys[1:])
        db.execute(
            f"CREATE TABLE {table}_fts_vectors (id BIGINT PRIMARY KEY, {columns}"
            " vec tsvector NOT NULL)"
        )
    fill_search_vectors(db)
    for table, keys in VECTOR_TABLES.items():
        db.execute(f"CREATE INDEX {table}_fts_vec ON {table}_fts_vectors USING GIN (vec)")
        if "sample_id" in keys:
            db.execute(f"CREATE INDEX {table}_fts_sample ON {table}_fts_vectors (sample_id)")
    for table, keys in VECTOR_TABLES.items():
        # Last: dropping an index locks its table against readers until the commit.
        db.execute(f"DROP INDEX {table}_fts")
        db.execute(
            _PG_VECTORS.format(
                table=table,
                keys=", ".join(keys),
                vector=SEARCH_VECTOR.format(row="r"),
                new_vector=SEARCH_VECTOR.format(row="NEW"),
            )
        )
        for op, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            db.execute(
                f"CREATE TRIGGER {table}_fts_{op.lower()} AFTER {op} ON {table}"
                f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {table}_fts_vectors()"
            )
        # An edit of a text is rare and one row: a row trigger, only when a text changed.
        db.execute(
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF instruction, input, output"
            f" ON {table} FOR EACH ROW WHEN ((OLD.instruction, OLD.input, OLD.output)"
            " IS DISTINCT FROM (NEW.instruction, NEW.input, NEW.output))"
            f" EXECUTE FUNCTION {table}_fts_vectors()"
        )


def m026_backlog_deletes(db: Connection) -> None:
    """SQLite gives a new row the largest id plus one, so once the rows with the largest ids
    are deleted, new rows take ids the backlog (`search_backlog.indexed_upto`) counts as
    indexed: they were never searchable, and a later delete of one would take words out of
    the index that it never held. A delete of an indexed row now also brings `indexed_upto`
    down to the largest id left; every row up to it is indexed, and new ones are backlog.
    The samples' delete, unlike the candidates', also touched rows the index never held."""
    if str(getattr(db, "dialect", "sqlite")) == POSTGRESQL:
        return
    columns = "instruction, input, output"
    for table in ("samples", "candidates"):
        upto = f"(SELECT indexed_upto FROM search_backlog WHERE name = '{table}')"
        largest = f"(SELECT coalesce(max(id), 0) FROM {table})"
        db.execute(f"DROP TRIGGER IF EXISTS {table}_fts_delete")
        db.execute(
            f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table}"
            f" WHEN old.id <= {upto} BEGIN"
            f" INSERT INTO {table}_fts ({table}_fts, rowid, {columns})"
            f" VALUES ('delete', old.id, old.instruction, old.input, old.output);"
            f" UPDATE search_backlog SET indexed_upto = {largest}"
            f" WHERE name = '{table}' AND indexed_upto > {largest}; END"
        )
