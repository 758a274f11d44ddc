"""Migration m018: per-dataset counts the store keeps as it writes (samples, and samples by
review status), so a page run reads a handful of rows instead of counting a million.

Triggers keep them, so no write path can forget to: an import's publish, a decision, an undo,
a state rebuild, a store copy. SQLite has one writer at a time, and its row triggers add to
`tallies` directly. PostgreSQL serves many writers at once, and two decisions moving counts
in opposite directions (accepted to rejected, rejected to accepted) would lock the same two
rows in opposite orders: its statement triggers append to `tally_deltas` instead, which no
writer ever updates, and readers add those rows to `tallies` and fold them in now and then
(`TallyStore`). Kept apart from schema.py only to keep modules small.
"""

from __future__ import annotations

from .connection import POSTGRESQL, Connection

# The tally of all a dataset's samples; the others are named by review status.
SAMPLES = "samples"


def m018_tallies(db: Connection) -> None:
    """Counts per dataset of samples and of samples by review status, kept by triggers."""
    for sql in (
        "CREATE TABLE tallies (dataset_id INTEGER NOT NULL, name TEXT NOT NULL,"
        " n INTEGER NOT NULL, PRIMARY KEY (dataset_id, name))",
        "CREATE TABLE tally_deltas (id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL,"
        " name TEXT NOT NULL, n INTEGER NOT NULL)",
        "CREATE INDEX tally_deltas_dataset ON tally_deltas(dataset_id, name)",
        f"INSERT INTO tallies (dataset_id, name, n) SELECT dataset_id, '{SAMPLES}', count(*)"
        " FROM samples GROUP BY dataset_id",
        "INSERT INTO tallies (dataset_id, name, n) SELECT dataset_id, status, count(*)"
        " FROM sample_state GROUP BY dataset_id, status",
    ):
        db.execute(sql)
    if str(getattr(db, "dialect", "sqlite")) == POSTGRESQL:
        _postgres_triggers(db)
    else:
        _sqlite_triggers(db)


def _add(dataset: str, name: str, n: int) -> str:
    return (
        f"INSERT INTO tallies (dataset_id, name, n) VALUES ({dataset}, {name}, {n})"
        f" ON CONFLICT (dataset_id, name) DO UPDATE SET n = n + ({n});"
    )


def _sqlite_triggers(db: Connection) -> None:
    new_sample, old_sample = (
        _add("new.dataset_id", f"'{SAMPLES}'", 1),
        _add("old.dataset_id", f"'{SAMPLES}'", -1),
    )
    new_state, old_state = (
        _add("new.dataset_id", "new.status", 1),
        _add("old.dataset_id", "old.status", -1),
    )
    for sql in (
        f"CREATE TRIGGER samples_tally_insert AFTER INSERT ON samples BEGIN {new_sample} END",
        f"CREATE TRIGGER samples_tally_delete AFTER DELETE ON samples BEGIN {old_sample} END",
        "CREATE TRIGGER samples_tally_update AFTER UPDATE OF dataset_id ON samples"
        f" WHEN old.dataset_id != new.dataset_id BEGIN {old_sample} {new_sample} END",
        f"CREATE TRIGGER sample_state_tally_insert AFTER INSERT ON sample_state BEGIN"
        f" {new_state} END",
        f"CREATE TRIGGER sample_state_tally_delete AFTER DELETE ON sample_state BEGIN"
        f" {old_state} END",
        "CREATE TRIGGER sample_state_tally_update AFTER UPDATE OF dataset_id, status"
        " ON sample_state WHEN old.dataset_id != new.dataset_id OR old.status != new.status"
        f" BEGIN {old_state} {new_state} END",
    ):
        db.execute(sql)


# One function per table: the rows a statement added count +1 under their tally, the rows it
# removed -1 (an update does both), grouped, as a few appended delta rows per statement.
_PG_FUNCTION = """
CREATE FUNCTION {table}_tally() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO tally_deltas (dataset_id, name, n)
    SELECT dataset_id, {name}, count(*) FROM new_rows GROUP BY 1, 2;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO tally_deltas (dataset_id, name, n)
    SELECT dataset_id, {name}, -count(*) FROM old_rows GROUP BY 1, 2;
  END IF;
  RETURN NULL;
END
$body$
"""


def _postgres_triggers(db: Connection) -> None:
    for table, name in (("samples", f"'{SAMPLES}'::text"), ("sample_state", "status")):
        db.execute(_PG_FUNCTION.format(table=table, name=name))
        for op, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            db.execute(
                f"CREATE TRIGGER {table}_tally_{op.lower()} AFTER {op} ON {table}"
                f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {table}_tally()"
            )
