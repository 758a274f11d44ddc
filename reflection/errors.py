"""Errors users see. The message of each is meant to be shown as it is."""

from __future__ import annotations

import os
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
