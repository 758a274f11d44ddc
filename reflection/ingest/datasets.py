"""Import a dataset file into the store: all records or none, in constant memory.

Records are read, validated and staged a chunk at a time (`Store.staged_samples`), then
published in one transaction. A bad record anywhere, even the last of ten million, raises
InputError naming the file and line before anything reaches the database. The full-text
index follows in short transactions of its own (`Store.index_search_backlog`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from ..formats import open_dataset
from ..progress import Progress, quiet
from ..store import Store
from ..store.space import SAMPLES_NEED, import_space, index_space

CHUNK = 5000  # samples validated and staged at a time


@dataclass
class ImportResult:
    dataset: str
    format: str
    records: int
    added: int
    skipped: int
    flagged: int
    run_id: int


def import_dataset(
    store: Store,
    path: str | Path,
    *,
    dataset: str | None = None,
    fmt: str | None = None,
    columns: dict[str, str] | None = None,
    split: str | None = None,
    index: bool = True,
    progress: Progress | None = None,
) -> ImportResult:
    """Read, validate and stage the whole file, then add its samples in one transaction.

    A malformed file raises InputError before anything is written. Samples whose content is
    already in the dataset are skipped, so importing a file twice adds nothing. With `index`
    the full-text index catches up before returning (searches are complete either way).
    `progress` is told how far it got (`Progress`).
    """
    tell = progress or quiet
    path = Path(path)
    stream = open_dataset(path, fmt, columns=columns, split=split)
    name = dataset or path.stem
    settings = {"path": str(path), "format": stream.format, "columns": columns or {},
                "split": split}  # fmt: skip
    with import_space(store, path, SAMPLES_NEED), store.staged_samples() as staging:
        samples = iter(stream)
        while chunk := list(itertools.islice(samples, CHUNK)):
            staging.add(chunk)
            tell("read", staging.count, None)
        tell("publish", staging.count, None)
        with store.transaction():
            ds = store.ensure_dataset(name)
            with store.run("import", ds.id, settings) as run:
                added, skipped = staging.publish(ds.id)
                run.counters = {"records": staging.count, "added": added, "skipped": skipped,
                                "flagged": staging.flagged}  # fmt: skip
    if index:
        with index_space(path, added):
            store.index_search_backlog_told(tell)
    tell("done", added, None)
    assert run.id is not None
    return ImportResult(name, stream.format, staging.count, added, skipped, staging.flagged, run.id)
