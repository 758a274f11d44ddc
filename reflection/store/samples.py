"""Datasets and their original samples."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import NotFoundError
from ..records import Dataset, Sample, content_hash, sample_flags
from .base import StoreBase, dumps, json_list, loads, now
from .connection import SQLITE

_SAMPLE_COLUMNS = (
    "dataset_id, position, source, instruction, input, output, system, history, meta, flags,"
    " content_hash, created_at"
)


def _sample(row: dict[str, Any]) -> Sample:
    return Sample(
        id=row["id"],
        dataset_id=row["dataset_id"],
        position=row["position"],
        source=row["source"],
        instruction=row["instruction"],
        input=row["input"],
        output=row["output"],
        system=row["system"],
        history=loads(row["history"], []),
        meta=loads(row["meta"], {}),
        flags=loads(row["flags"], []),
        content_hash=row["content_hash"],
        created_at=row["created_at"],
    )


class SampleStore(StoreBase):
    def ensure_dataset(self, name: str) -> Dataset:
        """The dataset called `name`, created if it does not exist yet."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO datasets (name, created_at) VALUES (?, ?)", [name, now()]
            )
        return self.dataset(name)

    def dataset(self, name_or_id: str | int) -> Dataset:
        """One dataset by name or id; NotFoundError names what exists."""
        column = "id" if isinstance(name_or_id, int) else "name"
        row = self.query_one(
            f"SELECT d.id, d.name, d.created_at,"
            f" (SELECT count(*) FROM samples s WHERE s.dataset_id = d.id) AS sample_count"
            f" FROM datasets d WHERE d.{column} = ?",
            [name_or_id],
        )
        if row is None:
            known = ", ".join(d.name for d in self.datasets()) or "none yet"
            raise NotFoundError(f"no dataset {name_or_id!r} in {self.path} (datasets: {known})")
        return Dataset(**row)

    def datasets(self) -> list[Dataset]:
        rows = self.query(
            "SELECT d.id, d.name, d.created_at, count(s.id) AS sample_count FROM datasets d"
            " LEFT JOIN samples s ON s.dataset_id = d.id GROUP BY d.id ORDER BY d.id"
        )
        return [Dataset(**row) for row in rows]

    def add_samples(self, dataset_id: int, samples: Iterable[Sample]) -> tuple[int, int]:
        """Insert samples, skipping any whose content is already in the dataset: (added, skipped)."""
        created = now()
        rows = []
        for sample in samples:
            sample.content_hash = sample.content_hash or content_hash(sample)
            flags = sorted(set(sample.flags) | set(sample_flags(sample)))
            rows.append(
                (
                    dataset_id,
                    sample.position,
                    sample.source,
                    sample.instruction,
                    sample.input,
                    sample.output,
                    sample.system,
                    dumps(sample.history),
                    # Key order kept: export writes extra fields back as the file had them.
                    json.dumps(sample.meta, ensure_ascii=False),
                    dumps(flags),
                    sample.content_hash,
                    created,
                )
            )
        with self.transaction():
            before = self.count_samples(dataset_id)
            last_id = self.scalar("SELECT coalesce(max(id), 0) FROM samples")
            self.conn.executemany(
                f"INSERT OR IGNORE INTO samples ({_SAMPLE_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                rows,
            )
            added = self.count_samples(dataset_id) - before
            if added and self.dialect == SQLITE:  # PostgreSQL's GIN index keeps itself
                # Full-text index of the new rows (see migration m004): ids only grow.
                self.conn.execute(
                    "INSERT INTO samples_fts (rowid, instruction, input, output)"
                    " SELECT id, instruction, input, output FROM samples WHERE id > ?",
                    [last_id],
                )
        return added, len(rows) - added

    def sample(self, sample_id: int) -> Sample:
        row = self.query_one("SELECT * FROM samples WHERE id = ?", [sample_id])
        if row is None:
            raise NotFoundError(f"no sample {sample_id} in {self.path}")
        return _sample(row)

    def samples(self, dataset_id: int, ids: Iterable[int] | None = None) -> Iterator[Sample]:
        """A dataset's samples in source order (position, then id), optionally only `ids`."""
        if ids is None:
            cursor = self.conn.execute(
                "SELECT * FROM samples WHERE dataset_id = ? ORDER BY position, id", [dataset_id]
            )
            names = [d[0] for d in cursor.description]
            for row in cursor:
                yield _sample(dict(zip(names, row, strict=True)))
            return
        rows = self.query(
            "SELECT * FROM samples WHERE dataset_id = ? AND id IN (SELECT value FROM json_each(?))"
            " ORDER BY position, id",
            [dataset_id, json_list(ids)],
        )
        yield from (_sample(row) for row in rows)

    def sample_ids(self, dataset_id: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM samples WHERE dataset_id = ? ORDER BY position, id", [dataset_id]
        )
        return [row[0] for row in rows]

    def count_samples(self, dataset_id: int | None = None) -> int:
        if dataset_id is None:
            return self.count("SELECT count(*) FROM samples")
        return self.count("SELECT count(*) FROM samples WHERE dataset_id = ?", [dataset_id])
