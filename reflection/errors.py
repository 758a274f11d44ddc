"""Errors users see. The message of each is meant to be shown as it is."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import TypedDict


class Where(TypedDict, total=False):
    """A record's place in a file, as readers keep it: `InputError(path, problem, **where)`."""

    line: int
    record: int
    split: str


class ReflectionError(Exception):
    """Base class: something the user can fix or should know about."""


class InputError(ReflectionError):
    """A dataset or template file is malformed; the message names the file and where."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        problem: str,
        *,
        line: int | None = None,
        record: int | None = None,
        split: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.record = record
        self.split = split
        self.problem = problem
        where = self.path if split is None else f"{self.path} (split {split})"
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record}"
        super().__init__(f"{where}: {problem}")


class StoreError(ReflectionError):
    """The database cannot be opened or is in a state we cannot work with."""


class DiskFullError(StoreError):
    """The disk (or a quota) filled up; what was being written was not kept."""


SQLITE_FULL = 13  # SQLite's result code for "database or disk is full"
SQLITE_INTERRUPT = 9  # a statement stopped by Ctrl-C (see store.base._let_signals_in)
PG_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


def size_label(size: float) -> str:
    """A size in bytes as people read it: 1.5 GB, 300 MB, 12 kB (binary units, as df -h)."""
    if size >= 2**30:
        return f"{size / 2**30:,.1f} GB"
    return f"{size / 2**20:,.0f} MB" if size >= 2**20 else f"{size / 2**10:,.0f} kB"


def free_bytes(folder: str | os.PathLike[str]) -> int:
    """Free space on the disk holding `folder` (or its nearest existing parent)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def free_space(folder: str | os.PathLike[str]) -> str:
    """ "N GB free in FOLDER.", for a message about a full disk."""
    with contextlib.suppress(OSError):
        return f"{size_label(free_bytes(folder))} free in {folder}."
    return ""


def is_disk_full(exc: BaseException) -> bool:
    """A full disk (or quota), as SQLite, PostgreSQL (psycopg) or the operating system says it."""
    # By attribute: sqlite3's errors carry `sqlite_errorcode`, psycopg's `sqlstate` (SQL
    # drivers are the store's to import).
    if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if getattr(exc, "sqlstate", None) == PG_DISK_FULL:
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class NotFoundError(ReflectionError):
    """A dataset, sample, candidate or run that was asked for does not exist."""


class OracleError(ReflectionError):
    """The oracle endpoint failed in a way retries cannot fix."""


class ConfigError(ReflectionError):
    """A setting is missing or invalid."""


class PermissionDenied(ReflectionError):
    """The signed-in account's role does not allow this, or a path lies outside the data roots."""


class SignInError(ReflectionError):
    """A sign-in was refused: wrong name or password, too many failures, or no role given."""


class ConfirmationNeeded(ReflectionError):
    """An action needs a second, explicit yes (e.g. accepting an empty output)."""


class ExportError(ReflectionError):
    """An export that would write nothing useful, and why."""


def is_interrupted(exc: BaseException) -> bool:
    """Ctrl-C: Python's KeyboardInterrupt, or the SQLite statement it stopped (sqlite3 turns
    the KeyboardInterrupt raised inside its progress handler into SQLITE_INTERRUPT)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return getattr(exc, "sqlite_errorcode", None) == SQLITE_INTERRUPT
