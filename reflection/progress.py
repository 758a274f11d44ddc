"""How long-running work says how far it got: a callback told (phase, done, total or None).

Phases: an import's "read" (records read, checked and staged), "publish" (its one
transaction starts), "index" (rows of the search index caught up, of about `total`); an
export's "write" (samples gone through, of `total`); "done" at the end (rows added or
records written). The command line shows them (`cli.common.work_progress`).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int | None], None]


def quiet(phase: str, done: int, total: int | None) -> None:
    """No progress shown."""
