"""Migrations of the team-review era: the audit log, accounts, assignments, review origins,
sessions, and background jobs claimed through the database.

Kept apart from schema.py (which lists every migration in order) only to keep modules small;
`_script` lives here because both use it.
"""

from __future__ import annotations

from typing import Any

from ..records import Review
from .connection import Connection
from .tracks import STATUS_OF_DECISION, tracks_in_force


def _script(db: Connection, sql: str) -> None:
    # Not executescript(): it commits first, which would break the migration's transaction.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def m010_audit(db: Connection) -> None:
    """An append-only log of who did what to accounts, assignments and adjudications."""
    db.execute(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL,"
        " actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',"
        " dataset_id INTEGER, detail TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute("CREATE INDEX audit_action ON audit(action, id)")


def m011_accounts(db: Connection) -> None:
    """Accounts (built-in with an argon2 hash, or an OIDC e-mail address) and sign-in failures.

    Names are unique whatever their case (`Alice` and `alice` are one account). Failures are
    kept per name, whether or not the account exists, so guessing is slowed for every name.
    """
    _script(
        db,
        """
        CREATE TABLE accounts (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            role TEXT NOT NULL,
            kind TEXT NOT NULL,
            password_hash TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE signin_failures (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            failures INTEGER NOT NULL,
            last_failed_at TEXT NOT NULL,
            blocked_until REAL NOT NULL
        )
        """,
    )


def m012_assignments(db: Connection) -> None:
    """Team review: who is assigned which sample, each reviewer's decision in force, and
    adjudications (reviews of kind `adjudication`). See store/tracks.py for the model."""
    _script(
        db,
        """
        ALTER TABLE reviews ADD COLUMN kind TEXT NOT NULL DEFAULT '';
        -- state: 'active' (the reviewer's to decide) or 'withdrawn' (reassigned to another).
        -- One key and no other index: a reviewer's queue is one range of it, and a million
        -- samples at overlap 3 write three million rows (no foreign key check on each: the
        -- library assigns only the dataset's own sample ids).
        CREATE TABLE assignments (
            dataset_id INTEGER NOT NULL,
            reviewer TEXT NOT NULL,
            sample_id INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'active',
            assigned_at TEXT NOT NULL,
            PRIMARY KEY (dataset_id, reviewer, sample_id)
        ) WITHOUT ROWID;
        -- Derived from reviews (rebuildable): the review in force on each track of a sample,
        -- a reviewer's own (kind '') or the shared adjudication track (kind 'adjudication').
        CREATE TABLE reviewer_state (
            sample_id INTEGER NOT NULL REFERENCES samples(id),
            kind TEXT NOT NULL DEFAULT '',
            reviewer TEXT NOT NULL,
            dataset_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            review_id INTEGER NOT NULL,
            candidate_id INTEGER NOT NULL DEFAULT 0,
            annotator TEXT NOT NULL DEFAULT '',
            decided_at TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (sample_id, kind, reviewer)
        ) WITHOUT ROWID;
        CREATE INDEX reviewer_state_queue
            ON reviewer_state(dataset_id, kind, reviewer, status, sample_id);
        """,
    )
    # Existing reviews predate assignments: each sample replays on its one shared stack.
    rows = db.execute(
        "SELECT r.id, r.sample_id, r.decision, r.candidate_id, r.annotator, r.created_at,"
        " s.dataset_id FROM reviews r JOIN samples s ON s.id = r.sample_id"
        " ORDER BY r.sample_id, r.id"
    ).fetchall()
    by_sample: dict[int, list[Any]] = {}
    for row in rows:
        by_sample.setdefault(row[1], []).append(row)
    for sample_id, found in by_sample.items():
        reviews = [
            Review(
                sample_id=sample_id,
                decision=r[2],
                candidate_id=r[3] or None,
                annotator=r[4],
                created_at=r[5],
                id=r[0],
            )  # fmt: skip
            for r in found
        ]
        for (kind, reviewer), review in tracks_in_force(reviews, assigned=False).items():
            db.execute(
                "INSERT INTO reviewer_state (sample_id, kind, reviewer, dataset_id, status,"
                " review_id, candidate_id, annotator, decided_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [sample_id, kind, reviewer, found[0][6], STATUS_OF_DECISION[review.decision],
                 review.id, review.candidate_id or 0, review.annotator, review.created_at],
            )  # fmt: skip


def m015_review_origins(db: Connection) -> None:
    """Where an imported review came from; `key` makes a second import of a file add nothing."""
    db.execute(
        "CREATE TABLE review_origins (review_id INTEGER PRIMARY KEY REFERENCES reviews(id),"
        " key TEXT NOT NULL UNIQUE, origin TEXT NOT NULL DEFAULT '{}')"
    )


def m016_sessions(db: Connection) -> None:
    """Signed-in sessions of built-in accounts, by the SHA-256 of their random token (the
    token itself lives only in the browser's cookie); `last_seen` is seconds since the epoch."""
    _script(
        db,
        """
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            account TEXT NOT NULL COLLATE NOCASE,
            created_at TEXT NOT NULL,
            last_seen REAL NOT NULL
        );
        CREATE INDEX sessions_account ON sessions(account)
        """,
    )


def m017_background_jobs(db: Connection) -> None:
    """A background job's own row beside its `job` run: the spec another process rebuilds it
    from (never the API key: only where the key came from), which process owns it, that
    owner's heartbeat (seconds since the epoch, on the database's clock; 0: never started),
    a stop request (who asked; '' for none) and the takeovers (a JSON list)."""
    _script(
        db,
        """
        CREATE TABLE background_jobs (
            run_id INTEGER NOT NULL PRIMARY KEY REFERENCES runs(id),
            spec TEXT NOT NULL DEFAULT '{}',
            key_source TEXT NOT NULL DEFAULT '',
            owner TEXT NOT NULL DEFAULT '',
            heartbeat REAL NOT NULL DEFAULT 0,
            stop_requested TEXT NOT NULL DEFAULT '',
            takeovers TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        )
        """,
    )
