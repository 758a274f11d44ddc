"""Schema migrations: named, ordered functions applied once each, in order, on open.

Add a migration by appending a function to MIGRATIONS; never edit one that has shipped.
Applied names are recorded in the `_migrations` table.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from .connection import POSTGRESQL, Connection
from .postgres import SEARCH_TEXT
from .schema_acceptance import m025_kept_acceptance
from .schema_flags import m020_kept_flags
from .schema_indexes import m022_scores_by_version, m023_candidates_by_status
from .schema_search import m021_search_without_positions, m024_search_vectors, m026_backlog_deletes
from .schema_tallies import m018_tallies
from .schema_team import (
    _script,
    m010_audit,
    m011_accounts,
    m012_assignments,
    m015_review_origins,
    m016_sessions,
    m017_background_jobs,
)


def m001_initial(db: Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id),
            position INTEGER,
            source TEXT NOT NULL DEFAULT '',
            instruction TEXT NOT NULL,
            input TEXT NOT NULL DEFAULT '',
            output TEXT NOT NULL DEFAULT '',
            system TEXT NOT NULL DEFAULT '',
            history TEXT NOT NULL DEFAULT '[]',
            meta TEXT NOT NULL DEFAULT '{}',
            flags TEXT NOT NULL DEFAULT '[]',
            content_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (dataset_id, content_hash)
        );
        CREATE INDEX samples_dataset_position ON samples(dataset_id, position);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            dataset_id INTEGER,
            status TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            counters TEXT NOT NULL DEFAULT '{}',
            error TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE candidates (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES samples(id),
            kind TEXT NOT NULL,
            parent_id INTEGER REFERENCES candidates(id),
            instruction TEXT NOT NULL DEFAULT '',
            input TEXT NOT NULL DEFAULT '',
            output TEXT NOT NULL DEFAULT '',
            critique TEXT NOT NULL DEFAULT '',
            raw TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'ok',
            error TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            prompt_hash TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            run_id INTEGER REFERENCES runs(id),
            annotator TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL DEFAULT '{}',
            job_key TEXT UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE INDEX candidates_sample ON candidates(sample_id);
        CREATE TABLE scores (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES samples(id),
            candidate_id INTEGER NOT NULL DEFAULT 0,
            metric TEXT NOT NULL,
            scorer TEXT NOT NULL DEFAULT '',
            value REAL,
            detail TEXT NOT NULL DEFAULT '{}',
            run_id INTEGER,
            created_at TEXT NOT NULL,
            UNIQUE (sample_id, candidate_id, metric, scorer)
        );
        CREATE INDEX scores_metric ON scores(metric, scorer);
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES samples(id),
            decision TEXT NOT NULL,
            candidate_id INTEGER NOT NULL DEFAULT 0,
            annotator TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            run_id INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX reviews_sample ON reviews(sample_id, id);
        CREATE INDEX reviews_run ON reviews(run_id);
        -- Derived from reviews (rebuildable): the review in force for each sample.
        CREATE TABLE sample_state (
            sample_id INTEGER PRIMARY KEY REFERENCES samples(id),
            dataset_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            review_id INTEGER,
            candidate_id INTEGER NOT NULL DEFAULT 0,
            annotator TEXT NOT NULL DEFAULT '',
            decided_at TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX sample_state_dataset ON sample_state(dataset_id, status);
        CREATE TABLE suggestions (
            sample_id INTEGER PRIMARY KEY REFERENCES samples(id),
            candidate_id INTEGER NOT NULL DEFAULT 0,
            rule TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            confidence REAL,
            run_id INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE TABLE oracle_cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            request TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    )


def m002_review_queue(db: Connection) -> None:
    """Full-text search over samples and candidates, and indexes for review-queue filters."""
    if _dialect(db) == POSTGRESQL:
        # A GIN index over the same tsvector expression the search queries use.
        for table in ("samples", "candidates"):
            db.execute(f"CREATE INDEX {table}_fts ON {table} USING GIN (({SEARCH_TEXT}))")
        db.execute("CREATE INDEX scores_metric_value ON scores(metric, value)")
        db.execute("CREATE INDEX candidates_status ON candidates(status, sample_id)")
        return
    # External-content FTS5 tables: the text stays in samples/candidates, triggers keep the
    # index in step. Statements one by one: trigger bodies contain semicolons.
    for table in ("samples", "candidates"):
        columns = "instruction, input, output"
        new = "new.instruction, new.input, new.output"
        old = "old.instruction, old.input, old.output"
        for sql in (
            f"CREATE VIRTUAL TABLE {table}_fts USING fts5({columns},"
            f" content='{table}', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
            f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN"
            f" INSERT INTO {table}_fts (rowid, {columns}) VALUES (new.id, {new}); END",
            f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN"
            f" INSERT INTO {table}_fts ({table}_fts, rowid, {columns})"
            f" VALUES ('delete', old.id, {old}); END",
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {columns} ON {table} BEGIN"
            f" INSERT INTO {table}_fts ({table}_fts, rowid, {columns})"
            f" VALUES ('delete', old.id, {old});"
            f" INSERT INTO {table}_fts (rowid, {columns}) VALUES (new.id, {new}); END",
            f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')",
        ):
            db.execute(sql)
    db.execute("CREATE INDEX scores_metric_value ON scores(metric, value)")
    db.execute("CREATE INDEX candidates_status ON candidates(status, sample_id)")


def m003_spotchecks(db: Connection) -> None:
    """Spot-checks: seeded random draws of a dataset's samples, each kept as its own queue."""
    _script(
        db,
        """
        CREATE TABLE spotchecks (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id),
            name TEXT NOT NULL,
            seed INTEGER NOT NULL,
            size INTEGER NOT NULL,
            population INTEGER NOT NULL,
            stratify TEXT NOT NULL DEFAULT '',
            strata TEXT NOT NULL DEFAULT '{}',
            settings TEXT NOT NULL DEFAULT '{}',
            annotator TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (dataset_id, name)
        );
        CREATE TABLE spotcheck_items (
            spotcheck_id INTEGER NOT NULL REFERENCES spotchecks(id),
            rank INTEGER NOT NULL,
            sample_id INTEGER NOT NULL REFERENCES samples(id),
            stratum TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (spotcheck_id, rank),
            UNIQUE (spotcheck_id, sample_id)
        );
        """,
    )


def m004_bulk_sample_index(db: Connection) -> None:
    """Samples are immutable and only `add_samples` inserts them, so it indexes them for
    full-text search in one INSERT ... SELECT after the rows are in: several times faster on
    large imports than the per-row trigger."""
    if _dialect(db) != POSTGRESQL:  # PostgreSQL's index is an expression index: no trigger
        db.execute("DROP TRIGGER samples_fts_insert")


def m005_suggestion_decision(db: Connection) -> None:
    """A suggestion can propose leaving a sample out (selection rules drop misaligned pairs)."""
    db.execute("ALTER TABLE suggestions ADD COLUMN decision TEXT NOT NULL DEFAULT 'accept'")


def m006_dashboard_scores(db: Connection) -> None:
    """A covering index for per-metric, per-dataset score aggregates (dashboard histograms)."""
    # Ordered by sample then version, so a dataset's id range is one index range and each
    # original sits right before its candidates (the shift query pairs them in one pass).
    db.execute(
        "CREATE INDEX scores_dashboard ON scores(metric, scorer, sample_id, candidate_id, value)"
    )


def m007_review_flag_index(db: Connection) -> None:
    """A partial index of flagged samples: flag lists and flag filters skip the unflagged."""
    db.execute("CREATE INDEX samples_flagged ON samples(dataset_id, flags) WHERE flags != '[]'")


def m008_review_range_index(db: Connection) -> None:
    """Score-range and score-flag filters read only this index (3x faster at 100k samples);
    it supersedes m002's (metric, value) index, which is its prefix."""
    db.execute("DROP INDEX scores_metric_value")
    db.execute("CREATE INDEX scores_metric_range ON scores(metric, value, candidate_id, sample_id)")


# Each reflected version's change of a metric against the original, by the same scorer.
# Derived from scores (put_scores keeps it in step), so filters and orders on a change read one
# index instead of joining every score of a metric with the original's.
SCORE_CHANGES_SELECT = (
    "SELECT c.sample_id, c.candidate_id, c.metric, c.scorer, c.value - o.value FROM scores c"
    " JOIN scores o ON o.sample_id = c.sample_id AND o.candidate_id = 0"
    " AND o.metric = c.metric AND o.scorer = c.scorer"
    " WHERE c.candidate_id != 0 AND c.value IS NOT NULL AND o.value IS NOT NULL"
)


def m009_score_changes(db: Connection) -> None:
    """Score changes (reflected minus original) as their own indexed table."""
    db.execute(
        "CREATE TABLE score_changes (sample_id INTEGER NOT NULL, candidate_id INTEGER NOT NULL,"
        " metric TEXT NOT NULL, scorer TEXT NOT NULL, change REAL NOT NULL,"
        " PRIMARY KEY (sample_id, candidate_id, metric, scorer)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX score_changes_metric ON score_changes(metric, change, sample_id)")
    db.execute(f"INSERT INTO score_changes {SCORE_CHANGES_SELECT}")


def m014_search_backlog(db: Connection) -> None:
    """Bulk writes publish samples and candidates without their full-text entries;
    `Store.index_search_backlog` adds them after, in short transactions, up to the id this
    table keeps per table (searches read the rest directly). So candidates lose the insert
    trigger, and their delete and update triggers touch only rows already indexed. FTS hash
    tables grow to 16 MB (not 1 MB) before writing a segment: bulk indexing runs about twice
    as fast."""
    db.execute("CREATE TABLE search_backlog (name TEXT PRIMARY KEY, indexed_upto INTEGER NOT NULL)")
    if _dialect(db) == POSTGRESQL:  # its GIN indexes follow every write: no backlog
        return
    for table in ("samples", "candidates"):
        db.execute(
            f"INSERT INTO search_backlog VALUES ('{table}',"
            f" (SELECT coalesce(max(id), 0) FROM {table}))"
        )
        with contextlib.suppress(sqlite3.OperationalError):  # an SQLite without the option
            db.execute(
                f"INSERT INTO {table}_fts ({table}_fts, rank) VALUES ('hashsize', {16 << 20})"
            )
    columns = "instruction, input, output"
    old = "old.instruction, old.input, old.output"
    indexed = "old.id <= (SELECT indexed_upto FROM search_backlog WHERE name = 'candidates')"
    for name in ("insert", "delete", "update"):
        db.execute(f"DROP TRIGGER candidates_fts_{name}")
    db.execute(
        f"CREATE TRIGGER candidates_fts_delete AFTER DELETE ON candidates WHEN {indexed} BEGIN"
        f" INSERT INTO candidates_fts (candidates_fts, rowid, {columns})"
        f" VALUES ('delete', old.id, {old}); END"
    )
    db.execute(
        f"CREATE TRIGGER candidates_fts_update AFTER UPDATE OF {columns} ON candidates"
        f" WHEN {indexed} BEGIN"
        f" INSERT INTO candidates_fts (candidates_fts, rowid, {columns})"
        f" VALUES ('delete', old.id, {old});"
        f" INSERT INTO candidates_fts (rowid, {columns})"
        f" VALUES (new.id, new.instruction, new.input, new.output); END"
    )


def m019_suggestion_confidence(db: Connection) -> None:
    """The review queue's order by confidence walks this index instead of ranking all."""
    db.execute("CREATE INDEX suggestions_confidence ON suggestions(confidence, sample_id)")


MIGRATIONS: list[Callable[[Connection], None]] = [
    m001_initial,
    m002_review_queue,
    m003_spotchecks,
    m004_bulk_sample_index,
    m005_suggestion_decision,
    m006_dashboard_scores,
    m007_review_flag_index,
    m008_review_range_index,
    m009_score_changes,
    m010_audit,
    m011_accounts,
    m012_assignments,
    m014_search_backlog,
    m015_review_origins,
    m016_sessions,
    m017_background_jobs,
    m018_tallies,
    m019_suggestion_confidence,
    m020_kept_flags,
    m021_search_without_positions,
    m022_scores_by_version,
    m023_candidates_by_status,
    m024_search_vectors,
    m025_kept_acceptance,
    m026_backlog_deletes,
]


def _dialect(db: Connection) -> str:
    return str(getattr(db, "dialect", "sqlite"))


# PostgreSQL: one advisory lock key for migrating, so two servers starting at once take turns.
MIGRATION_LOCK = 7_140_212_310


def ensure_schema(db: Connection, dialect: str = "sqlite") -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names."""
    return _migrate(db, dialect == POSTGRESQL)


def _migrate(db: Connection, postgres: bool) -> list[str]:
    create = (
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    if not postgres:
        db.execute(create)
    else:  # two servers starting at once take turns (the lock ends with each COMMIT)
        db.execute("BEGIN")
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])
            # Account names compare without case on both: SQLite's NOCASE, an ICU collation.
            db.execute(
                "CREATE COLLATION IF NOT EXISTS nocase (provider = icu,"
                " locale = 'und-u-ks-level2', deterministic = false)"
            )
            db.execute(create)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    applied = []
    for migration in MIGRATIONS:
        name = migration.__name__
        # BEGIN IMMEDIATE so two processes opening a new file don't both migrate it.
        db.execute("BEGIN" if postgres else "BEGIN IMMEDIATE")
        try:
            if postgres:
                db.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])
            done = db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone()
            if not done:
                migration(db)
                db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    [name, datetime.now(UTC).isoformat(timespec="seconds")],
                )
                applied.append(name)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return applied
