"""Migration m018: per-dataset counts the store keeps as it writes (samples, candidates,
scores, samples by review status), so a page run reads a handful of rows instead of counting
millions.

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
from .tracks import STATUS_OF_DECISION

# The tally of all a dataset's samples, of its candidates and of its scores that have a value;
# the others are named by review status.
SAMPLES = "samples"
CANDIDATES = "candidates"
SCORES = "scores"

# Every tally's name, as a one-column query.
_NAMES = " UNION ALL ".join(
    f"SELECT '{name}' AS name"
    for name in (SAMPLES, CANDIDATES, SCORES, *STATUS_OF_DECISION.values())
)
# What each trigger counts: (table, tally name as SQL of the row `r`, the row's dataset as SQL,
# a join that finds it, a condition on the row). Candidates and scores reach their dataset
# through their sample.
COUNTED = (
    ("samples", f"'{SAMPLES}'", "r.dataset_id", "", ""),
    ("sample_state", "r.status", "r.dataset_id", "", ""),
    ("candidates", f"'{CANDIDATES}'", "s.dataset_id", " JOIN samples s ON s.id = r.sample_id", ""),
    ("scores", f"'{SCORES}'", "s.dataset_id", " JOIN samples s ON s.id = r.sample_id",
     " WHERE r.value IS NOT NULL"),
)  # fmt: skip


def m018_tallies(db: Connection) -> None:
    """Per-dataset counts of samples, candidates, scores and samples by review status, kept
    by triggers."""
    for sql in (
        "CREATE TABLE tallies (dataset_id INTEGER NOT NULL, name TEXT NOT NULL,"
        " n INTEGER NOT NULL, PRIMARY KEY (dataset_id, name))",
        "CREATE TABLE tally_deltas (id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL,"
        " name TEXT NOT NULL, n INTEGER NOT NULL)",
        "CREATE INDEX tally_deltas_dataset ON tally_deltas(dataset_id, name)",
    ):
        db.execute(sql)
    for table, name, dataset, join, where in COUNTED:
        db.execute(
            f"INSERT INTO tallies (dataset_id, name, n) SELECT {dataset}, {name}, count(*)"
            f" FROM {table} r{join}{where} GROUP BY 1, 2"
        )
    # Every dataset has every tally, zero or not: SQLite's triggers then only update a row.
    db.execute(f"INSERT OR IGNORE INTO tallies (dataset_id, name, n) SELECT d.id, t.name, 0"
               f" FROM datasets d, ({_NAMES}) AS t")  # fmt: skip
    if str(getattr(db, "dialect", "sqlite")) == POSTGRESQL:
        _postgres_triggers(db)
    else:
        _sqlite_triggers(db)


def _add(row: str, name: str, dataset: str, join: str, where: str, n: int) -> str:
    """SQL adding `n` to the tally of trigger row `row` (new or old), if it counts. An UPDATE
    of a row that is there: an upsert per row tripled the cost of writing a score."""
    name, dataset, where = (part.replace("r.", f"{row}.") for part in (name, dataset, where))
    if join:  # the dataset is the row's sample's
        dataset = f"(SELECT s.dataset_id FROM samples s WHERE s.id = {row}.sample_id)"
    where = where.replace(" WHERE ", " AND ")
    return (
        f"UPDATE tallies SET n = n + ({n}) WHERE dataset_id = {dataset} AND name = {name}{where};"
    )


def _sqlite_triggers(db: Connection) -> None:
    db.execute(
        "CREATE TRIGGER datasets_tally_insert AFTER INSERT ON datasets BEGIN"
        f" INSERT OR IGNORE INTO tallies (dataset_id, name, n) SELECT new.id, t.name, 0"
        f" FROM ({_NAMES}) AS t; END"
    )
    db.execute(
        "CREATE TRIGGER datasets_tally_delete AFTER DELETE ON datasets BEGIN"
        " DELETE FROM tallies WHERE dataset_id = old.id; END"
    )
    for table, name, dataset, join, where in COUNTED:
        new, old = (
            _add(row, name, dataset, join, where, n) for row, n in (("new", 1), ("old", -1))
        )
        # An update moves a row between tallies when what they are keyed on changes.
        keys = {"samples": ["dataset_id"], "sample_state": ["dataset_id", "status"],
                "candidates": ["sample_id"], "scores": ["sample_id", "value"]}[table]  # fmt: skip
        changed = " OR ".join(
            f"(old.{k} IS NULL) != (new.{k} IS NULL)" if k == "value" else f"old.{k} != new.{k}"
            for k in keys
        )
        for sql in (
            f"CREATE TRIGGER {table}_tally_insert AFTER INSERT ON {table} BEGIN {new} END",
            f"CREATE TRIGGER {table}_tally_delete AFTER DELETE ON {table} BEGIN {old} END",
            f"CREATE TRIGGER {table}_tally_update AFTER UPDATE OF {', '.join(keys)} ON {table}"
            f" WHEN {changed} BEGIN {old} {new} END",
        ):
            db.execute(sql)


# One function per table: the rows a statement added count +1 under their tally, the rows it
# removed -1 (an update does both), grouped, as a few appended delta rows per statement.
_PG_FUNCTION = """
CREATE FUNCTION {table}_tally() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO tally_deltas (dataset_id, name, n)
    SELECT {dataset}, {name}, count(*) FROM new_rows r{join}{where} GROUP BY 1, 2;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO tally_deltas (dataset_id, name, n)
    SELECT {dataset}, {name}, -count(*) FROM old_rows r{join}{where} GROUP BY 1, 2;
  END IF;
  RETURN NULL;
END
$body$
"""


def _postgres_triggers(db: Connection) -> None:
    for table, name, dataset, join, where in COUNTED:
        db.execute(
            _PG_FUNCTION.format(
                table=table, name=f"{name}::text", dataset=dataset, join=join, where=where
            )
        )
        for op, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            db.execute(
                f"CREATE TRIGGER {table}_tally_{op.lower()} AFTER {op} ON {table}"
                f" REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {table}_tally()"
            )
