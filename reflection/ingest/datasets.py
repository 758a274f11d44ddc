"""Import a dataset file into the store: all records or none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..formats import read_dataset
from ..store import Store


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
) -> ImportResult:
    """Read and validate the whole file, then add its samples in one transaction.

    A malformed file raises InputError before anything is written. Samples whose content is
    already in the dataset are skipped, so importing a file twice adds nothing.
    """
    path = Path(path)
    samples, detected = read_dataset(path, fmt, columns=columns, split=split)
    name = dataset or path.stem
    settings = {"path": str(path), "format": detected, "columns": columns or {}, "split": split}
    with store.transaction():
        ds = store.ensure_dataset(name)
        with store.run("import", ds.id, settings) as run:
            added, skipped = store.add_samples(ds.id, samples)
            flagged = sum(1 for s in samples if not s.output.strip())
            run.counters = {
                "records": len(samples), "added": added, "skipped": skipped, "flagged": flagged
            }  # fmt: skip
    assert run.id is not None
    return ImportResult(name, detected, len(samples), added, skipped, flagged, run.id)
