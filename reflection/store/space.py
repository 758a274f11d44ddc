"""Disk space: what an import needs and where, and a full disk reported as such.

An import is all or nothing, so it writes its records twice before they are the store's:
SQLite stages them in a TEMP table, in its temporary folder (`sqlite_temp_dir`), and the one
publishing transaction writes them to the store's write-ahead log, beside the store, which
its commit then copies into the store file. Measured on Alpaca JSONL, as multiples of the
file's size: samples, 200,000 records (168 MB), staging 1.24 ×, the log 1.42 × and the
store's growth 1.41 × (1.58 × with the search index), log and growth at once at the commit;
candidates (import-candidates, 10,000,000 records, 8.4 GB), staging 1.7 × and the log 1.8 ×.
At ten million records that is tens of gigabytes, and a disk filling up used to end in the
driver's traceback ("database or disk is full") after many minutes.

`space_need` says beforehand when the free space looks short; `disk_full_errors` turns a
full disk, from SQLite, PostgreSQL or a file write, into a DiskFullError that says what was
being done, that nothing of it was kept, and where the space ran out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DiskFullError, free_bytes, is_disk_full, size_label
from .connection import SQLITE

if TYPE_CHECKING:
    from .base import StoreBase

# What an import needs, as multiples of its file's size (see above), with some room: in the
# temporary folder, and beside the store.
SAMPLES_NEED = (1.3, 3.0)
CANDIDATES_NEED = (1.8, 3.8)
# A Parquet file holds about half what the same records take as JSONL (Alpaca, snappy).
COMPRESSED = {".parquet": 2.0}


def sqlite_temp_dir() -> Path:
    """Where SQLite puts its temporary files (TEMP tables, sorts too large for memory): its
    own search order on Unix (os_unix.c), the first writable folder of $SQLITE_TMPDIR, $TMPDIR,
    /var/tmp, /usr/tmp, /tmp, then the current folder."""
    for name in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"),
                 "/var/tmp", "/usr/tmp", "/tmp"):  # fmt: skip
        if name and os.path.isdir(name) and os.access(name, os.W_OK | os.X_OK):
            return Path(name)
    return Path.cwd()


def source_bytes(path: str | os.PathLike[str]) -> int:
    """The size of a dataset file, or of the files of a folder (`datasets`), as JSONL would
    take it."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return int(path.stat().st_size * COMPRESSED.get(path.suffix.lower(), 1.0))


@dataclass(frozen=True)
class SpaceNeed:
    """What an import of `size` bytes needs in SQLite's temporary folder and beside the store."""

    size: int
    temp: Path
    temp_bytes: int
    store_dir: Path
    store_bytes: int

    def same_disk(self) -> bool:
        with contextlib.suppress(OSError):
            return os.stat(self.temp).st_dev == os.stat(self.store_dir).st_dev
        return False

    def describe(self) -> str:
        """Where the import writes and about how much, with what is free there now."""
        store_free = size_label(free_bytes(self.store_dir))
        if self.same_disk():
            return (f"about {size_label(self.temp_bytes + self.store_bytes)} on the disk"
                    f" holding both the store ({self.store_dir}) and SQLite's temporary folder"
                    f" ({self.temp}), which has {store_free} free")  # fmt: skip
        return (f"about {size_label(self.temp_bytes)} in SQLite's temporary folder"
                f" {self.temp} ({size_label(free_bytes(self.temp))} free) and"
                f" {size_label(self.store_bytes)} beside the store in {self.store_dir}"
                f" ({store_free} free)")  # fmt: skip

    def short(self) -> bool:
        """Whether the free space looks too small for the import."""
        if self.same_disk():
            return free_bytes(self.store_dir) < self.temp_bytes + self.store_bytes
        return (free_bytes(self.temp) < self.temp_bytes
                or free_bytes(self.store_dir) < self.store_bytes)  # fmt: skip

    def note(self, source: str | os.PathLike[str]) -> str | None:
        """A line for the user when the space looks short, else None."""
        if not self.short():
            return None
        return (f"importing {source} ({size_label(self.size)}) needs {self.describe()}."
                " Free some space, or set SQLITE_TMPDIR to a folder on a larger disk.")  # fmt: skip


def space_need(
    store: StoreBase, source: str | os.PathLike[str], factors: tuple[float, float]
) -> SpaceNeed | None:
    """What importing `source` into `store` needs (factors: SAMPLES_NEED, CANDIDATES_NEED);
    None on PostgreSQL, whose server keeps both copies on a disk of its own."""
    if store.dialect != SQLITE or not Path(source).exists():
        return None
    size = source_bytes(source)
    folder = Path(store.path).absolute().parent
    return SpaceNeed(size, sqlite_temp_dir(), int(size * factors[0]), folder,
                     int(size * factors[1]))  # fmt: skip


@contextlib.contextmanager
def disk_full_errors(doing: str, kept: str, need: SpaceNeed | None = None) -> Iterator[None]:
    """Raise DiskFullError for a full disk in the block: "The disk filled up while `doing`:
    `kept`." and, with `need`, where the work writes and how much."""
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        where = f" It needs {need.describe()}." if need is not None else ""
        hint = (" Free some space, or set SQLITE_TMPDIR to a folder on a larger disk."
                if need is not None else " Free some space and try again.")  # fmt: skip
        raise DiskFullError(
            f"The disk filled up while {doing}: {kept}.{where}{hint} ({exc})"
        ) from exc


def import_space(
    store: StoreBase,
    source: str | os.PathLike[str],
    factors: tuple[float, float],
    name: str | None = None,
) -> contextlib.AbstractContextManager[None]:
    """`disk_full_errors` for an all-or-nothing import of `source` (called `name`, an upload's
    own, where given) into `store`."""
    return disk_full_errors(
        f"importing {name or source}",
        "nothing was added to the store (an import is all or nothing)",
        space_need(store, source, factors),
    )


def index_space(
    source: str | os.PathLike[str], added: int
) -> contextlib.AbstractContextManager[None]:
    """`disk_full_errors` for the search index an import of `source` (`added` rows) catches up."""
    return disk_full_errors(
        f"indexing the rows of {source} for search",
        f"the {added:,} rows were added, and searches find them, more slowly, until"
        " `reflection index` (or the next import) catches the index up",
    )
