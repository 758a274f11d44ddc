"""Migration m025: per-dataset counts of which versions reviewers take, kept as rows are
written, so the Dashboard's acceptance chart reads a few rows instead of joining every
decided sample with its candidates (2.1-2.4 s of a 5.2 s cold Dashboard at 10,000,000
samples, a million of them decided).

For each candidate kind, per dataset:
- `offered:<kind>`: decided samples (accepted, edited or rejected) having a candidate of the
  kind, counted once however many they have;
- `accepted:<kind>`: decided samples whose version in force is a candidate of the kind.
And `accepted:original`: samples accepted as they were. The original is offered to every
decided sample: the status tallies of m018 count those.

Two tables move them. A decision (a `sample_state` row coming, going or changing) adds or
takes away its sample's whole contribution; its candidates are there to read. A candidate
coming or going changes a decided sample's kinds: it counts when it is the first of its kind
on the sample, or the last to go, and it moves `accepted` when it is the version in force.

- SQLite: row triggers, each guarded by a WHEN on the row, so a candidate of an undecided
  sample costs one probe of `sample_state`. They add by upsert: no zero rows to keep, and a
  kind the store has never seen counts too.
- PostgreSQL: statement triggers append deltas to `tally_deltas`, as m018's and m020's do:
  a statement's change in each touched sample's contribution, now less before. As with the
  flags, a candidate and a decision written at the same moment by two transactions can each
  miss the other; `tally_check` finds such a count and `stats --recount` sets it right.
"""

from __future__ import annotations

from .connection import POSTGRESQL, Connection

OFFERED = "offered:"
ACCEPTED = "accepted:"
ORIGINAL = "original"
DECIDED_STATUSES = ("accepted", "edited", "rejected")
_DECIDED = f"IN ({', '.join(repr(s) for s in DECIDED_STATUSES)})"

# The recounts, (dataset_id, name, n) rows: what the triggers keep, and `tally_check` compares.
COUNT_SQL = (
    f"SELECT st.dataset_id, '{OFFERED}' || c.kind, count(DISTINCT st.sample_id)"
    " FROM sample_state st JOIN candidates c ON c.sample_id = st.sample_id"
    f" WHERE st.status {_DECIDED} GROUP BY 1, 2",
    f"SELECT st.dataset_id, '{ACCEPTED}' || c.kind, count(*) FROM sample_state st"
    " JOIN candidates c ON c.id = st.candidate_id AND c.sample_id = st.sample_id"
    f" WHERE st.status {_DECIDED} GROUP BY 1, 2",
    f"SELECT dataset_id, '{ACCEPTED}{ORIGINAL}', count(*) FROM sample_state"
    " WHERE status = 'accepted' AND candidate_id = 0 GROUP BY 1",
)
# The columns the counts read, per table: an update of others changes none.
STATE_COLUMNS = ("sample_id", "dataset_id", "status", "candidate_id")
CANDIDATE_COLUMNS = ("sample_id", "kind")
# SQLite's trigger on inserted candidates, which a bulk publish drops (`bulk_counts`).
CANDIDATES_INSERT_TRIGGER = "candidates_acceptance_insert"


def m025_kept_acceptance(db: Connection) -> None:
    """Per-dataset counts of the decided samples offered and taking each candidate kind,
    kept by triggers."""
    for sql in COUNT_SQL:
        db.execute(f"INSERT INTO tallies (dataset_id, name, n) {sql}")
    if str(getattr(db, "dialect", "sqlite")) == POSTGRESQL:
        _postgres_triggers(db)
    else:
        _sqlite_triggers(db)


# --- SQLite -----------------------------------------------------------------------------------


def _upsert(select: str) -> str:
    """SQLite: add the (dataset_id, name, n) rows of `select` to their tallies. (`WHERE true`
    tells SQLite's parser the ON CONFLICT belongs to the INSERT, not to a join.)"""
    return (
        f"INSERT INTO tallies (dataset_id, name, n) SELECT * FROM ({select}) WHERE true"
        " ON CONFLICT (dataset_id, name) DO UPDATE SET n = n + excluded.n;"
    )


def _decision(row: str, n: int) -> str:
    """SQLite: the contribution of `sample_state` row `row` (new or old), times `n`."""
    decided = f"{row}.status {_DECIDED}"
    offered = _upsert(
        f"SELECT {row}.dataset_id, '{OFFERED}' || k.kind, {n} FROM"
        f" (SELECT DISTINCT c.kind FROM candidates c WHERE c.sample_id = {row}.sample_id) k"
        f" WHERE {decided}"
    )
    taken = (
        f"SELECT '{ACCEPTED}' || c.kind FROM candidates c"
        f" WHERE c.id = {row}.candidate_id AND c.sample_id = {row}.sample_id"
    )
    accepted = _upsert(
        f"SELECT {row}.dataset_id, coalesce(({taken}), CASE WHEN {row}.candidate_id = 0"
        f" AND {row}.status = 'accepted' THEN '{ACCEPTED}{ORIGINAL}' END) AS name, {n}"
        f" WHERE {decided} AND name IS NOT NULL"
    )
    return offered + " " + accepted


def _candidate(row: str, n: int, excluding: bool) -> str:
    """SQLite: what candidate row `row` (new or old) adds to its decided sample's counts,
    times `n`: its kind offered unless another of the sample's candidates (other than it, with
    `excluding`) has it; its kind taken if it is the version in force."""
    skip = f" AND x.id != {row}.id" if excluding else ""
    state = f"sample_state st WHERE st.sample_id = {row}.sample_id AND st.status {_DECIDED}"
    offered = _upsert(
        f"SELECT st.dataset_id, '{OFFERED}' || {row}.kind, {n} FROM {state}"
        f" AND NOT EXISTS (SELECT 1 FROM candidates x WHERE x.sample_id = {row}.sample_id"
        f" AND x.kind = {row}.kind{skip})"
    )
    accepted = _upsert(
        f"SELECT st.dataset_id, '{ACCEPTED}' || {row}.kind, {n} FROM {state}"
        f" AND st.candidate_id = {row}.id"
    )
    return offered + " " + accepted


def _sqlite_triggers(db: Connection) -> None:
    decided_new, decided_old = f"new.status {_DECIDED}", f"old.status {_DECIDED}"
    changed = " OR ".join(f"old.{c} != new.{c}" for c in STATE_COLUMNS)
    of_sample = "EXISTS (SELECT 1 FROM sample_state st WHERE st.sample_id = {row}.sample_id)"
    moved = " OR ".join(f"old.{c} != new.{c}" for c in CANDIDATE_COLUMNS)
    for sql in (
        f"CREATE TRIGGER sample_state_acceptance_insert AFTER INSERT ON sample_state"
        f" WHEN {decided_new} BEGIN {_decision('new', 1)} END",
        f"CREATE TRIGGER sample_state_acceptance_delete AFTER DELETE ON sample_state"
        f" WHEN {decided_old} BEGIN {_decision('old', -1)} END",
        f"CREATE TRIGGER sample_state_acceptance_update AFTER UPDATE OF"
        f" {', '.join(STATE_COLUMNS)} ON sample_state"
        f" WHEN ({decided_old} OR {decided_new}) AND ({changed})"
        f" BEGIN {_decision('old', -1)} {_decision('new', 1)} END",
        # Most candidates belong to undecided samples: one probe of sample_state says so.
        f"CREATE TRIGGER {CANDIDATES_INSERT_TRIGGER} AFTER INSERT ON candidates"
        f" WHEN {of_sample.format(row='new')} BEGIN {_candidate('new', 1, True)} END",
        f"CREATE TRIGGER candidates_acceptance_delete AFTER DELETE ON candidates"
        f" WHEN {of_sample.format(row='old')} BEGIN {_candidate('old', -1, False)} END",
        # After an update the row reads as new: for the old values it is already elsewhere.
        f"CREATE TRIGGER candidates_acceptance_update AFTER UPDATE OF"
        f" {', '.join(CANDIDATE_COLUMNS)} ON candidates WHEN {moved}"
        f" BEGIN {_candidate('old', -1, False)} {_candidate('new', 1, True)} END",
    ):
        db.execute(sql)


def bulk_count_sql(from_states: bool) -> str:
    """SQLite: what CANDIDATES_INSERT_TRIGGER would have added, row by row, for the candidates
    past the largest id before them (every `?` binds that id): each decided sample's new
    kinds, once, that no older candidate of it had; and the version in force among them.

    `from_states`: walk the decided samples and probe their candidates (through the covering
    index on `sample_id, kind`), rather than walk the new rows, texts and all, and probe each
    one's sample: right when the new rows outnumber the decided samples, as in an import of
    candidates for a whole dataset. (CROSS JOIN fixes SQLite's join order.)"""
    pair = (
        "sample_state st CROSS JOIN candidates c"
        if from_states
        else ("candidates c CROSS JOIN sample_state st")
    )
    where = f"WHERE st.status {_DECIDED} AND c.sample_id = st.sample_id AND c.id > ?"
    offered = (
        f"SELECT st.dataset_id AS dataset_id, '{OFFERED}' || c.kind AS name,"
        f" count(DISTINCT c.sample_id) AS n FROM {pair} {where} AND NOT EXISTS (SELECT 1"
        " FROM candidates x WHERE x.sample_id = c.sample_id AND x.kind = c.kind AND x.id <= ?)"
        " GROUP BY 1, 2"
    )
    accepted = (
        f"SELECT st.dataset_id, '{ACCEPTED}' || c.kind, count(*) FROM {pair} {where}"
        " AND c.id = st.candidate_id GROUP BY 1, 2"
    )
    return _upsert(f"{offered} UNION ALL {accepted}").removesuffix(";")


# --- PostgreSQL -------------------------------------------------------------------------------

# A decision statement: the contribution of each decided row it wrote, less each it replaced.
_PG_DECISION_ROWS = """
      SELECT r.dataset_id, '{offered}' || k.kind AS name, {n} AS n FROM {rows} r
      CROSS JOIN LATERAL (SELECT DISTINCT c.kind FROM candidates c
                          WHERE c.sample_id = r.sample_id) AS k
      WHERE r.status {decided}
      UNION ALL
      SELECT r.dataset_id, coalesce('{accepted}' || c.kind, '{accepted}{original}'), {n}
      FROM {rows} r LEFT JOIN candidates c ON c.id = r.candidate_id AND c.sample_id = r.sample_id
      WHERE r.status {decided} AND (c.id IS NOT NULL
                                    OR (r.candidate_id = 0 AND r.status = 'accepted'))"""
_PG_DECISIONS = """
    INSERT INTO tally_deltas (dataset_id, name, n)
    SELECT dataset_id, name, sum(n) FROM ({rows}) AS d
    GROUP BY dataset_id, name HAVING sum(n) <> 0;"""

# A candidate statement: for each decided sample it touched, its contribution with the
# candidates as they are now, less with them as they were (now, less the statement's new rows,
# plus its old ones).
_PG_CANDIDATES = """
    WITH t AS (SELECT st.sample_id, st.dataset_id, st.candidate_id FROM sample_state st
               WHERE st.status {decided} AND st.sample_id IN ({touched})),
    now_c AS (SELECT c.id, c.sample_id, c.kind FROM candidates c JOIN t USING (sample_id)),
    before_c AS ({before}),
    d AS (
      SELECT t.dataset_id, '{offered}' || v.kind AS name, 1 AS n FROM t
      JOIN (SELECT DISTINCT sample_id, kind FROM now_c) v USING (sample_id)
      UNION ALL SELECT t.dataset_id, '{offered}' || v.kind, -1 FROM t
      JOIN (SELECT DISTINCT sample_id, kind FROM before_c) v USING (sample_id)
      UNION ALL SELECT t.dataset_id, '{accepted}' || v.kind, 1 FROM t
      JOIN now_c v ON v.id = t.candidate_id AND v.sample_id = t.sample_id
      UNION ALL SELECT t.dataset_id, '{accepted}' || v.kind, -1 FROM t
      JOIN before_c v ON v.id = t.candidate_id AND v.sample_id = t.sample_id
    )
    INSERT INTO tally_deltas (dataset_id, name, n)
    SELECT dataset_id, name, sum(n) FROM d GROUP BY dataset_id, name HAVING sum(n) <> 0;"""


def _postgres_triggers(db: Connection) -> None:
    names = {"offered": OFFERED, "accepted": ACCEPTED, "original": ORIGINAL, "decided": _DECIDED}
    decisions = {
        op: _PG_DECISIONS.format(
            rows=" UNION ALL ".join(
                _PG_DECISION_ROWS.format(rows=rows, n=n, **names) for rows, n in parts
            )
        )
        for op, parts in (
            ("INSERT", [("new_rows", 1)]),
            ("DELETE", [("old_rows", -1)]),
            ("UPDATE", [("new_rows", 1), ("old_rows", -1)]),
        )
    }
    kept_new = "SELECT id, sample_id, kind FROM now_c WHERE id NOT IN (SELECT id FROM new_rows)"
    old = "SELECT r.id, r.sample_id, r.kind FROM old_rows r JOIN t USING (sample_id)"
    candidates = {
        op: _PG_CANDIDATES.format(touched=touched, before=before, **names)
        for op, touched, before in (
            ("INSERT", "SELECT sample_id FROM new_rows", kept_new),
            ("DELETE", "SELECT sample_id FROM old_rows", f"SELECT * FROM now_c UNION ALL {old}"),
            (
                "UPDATE",
                "SELECT sample_id FROM new_rows UNION SELECT sample_id FROM old_rows",
                f"{kept_new} UNION ALL {old}",
            ),
        )
    }
    for table, bodies in (("sample_state", decisions), ("candidates", candidates)):
        branches = " ".join(f"IF TG_OP = '{op}' THEN {body} END IF;" for op, body in bodies.items())
        db.execute(
            f"CREATE FUNCTION {table}_acceptance_tally() RETURNS trigger LANGUAGE plpgsql"
            f" AS $body$ BEGIN {branches} RETURN NULL; END $body$"
        )
        for op, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ):
            db.execute(
                f"CREATE TRIGGER {table}_acceptance_{op.lower()} AFTER {op} ON {table}"
                f" REFERENCING {tables} FOR EACH STATEMENT"
                f" EXECUTE FUNCTION {table}_acceptance_tally()"
            )
