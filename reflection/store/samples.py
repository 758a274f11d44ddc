"""Datasets and their original samples."""

from __future__ import annotations

import contextlib
import itertools
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import NotFoundError
from ..records import Dataset, Sample, SampleState, Suggestion, stored_id
from .base import from_db_candidate, json_list, loads, now
from .schema_tallies import SAMPLES
from .search import SearchIndexStore
from .staging import Staging
from .tallies import SAMPLE_COUNT_SQL, TallyStore


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


class SampleStore(SearchIndexStore, TallyStore):
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
            # The count the store keeps (m018): counting the rows took 88 ms at 1M samples,
            # and every page asks for its dataset.
            f"SELECT d.id, d.name, d.created_at, {SAMPLE_COUNT_SQL} AS sample_count"
            f" FROM datasets d WHERE d.{column} = ?",
            [name_or_id],
        )
        if row is None:
            known = ", ".join(d.name for d in self.datasets()) or "none yet"
            raise NotFoundError(f"no dataset {name_or_id!r} in {self.path} (datasets: {known})")
        return Dataset(**row)

    def datasets(self) -> list[Dataset]:
        rows = self.query(
            f"SELECT d.id, d.name, d.created_at, {SAMPLE_COUNT_SQL} AS sample_count"
            " FROM datasets d ORDER BY d.id"
        )
        return [Dataset(**row) for row in rows]

    def add_samples(self, dataset_id: int, samples: Iterable[Sample]) -> tuple[int, int]:
        """Insert samples, skipping any whose content is already in the dataset: (added, skipped)."""
        with self.staged_samples() as staging:
            staging.add(samples)
            with self.transaction():
                added, skipped = staging.publish(dataset_id)
        self.index_search_backlog()
        return added, skipped

    def staged_samples(self) -> contextlib.AbstractContextManager[Staging]:
        """A temporary table to write samples to a chunk at a time, then publish in one
        transaction. Until then nothing touches the database file: an error or a crash
        leaves it exactly as it was, and memory holds one chunk, not the file."""
        return self.temp_tables(Staging)

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
        # `+dataset_id`: look the ids up by key. Without it SQLite walked the dataset's
        # (dataset_id, position) index for its order: 0.28 s a chunk of 500 at 1,000,000.
        rows = self.query(
            "SELECT * FROM samples WHERE +dataset_id = ? AND id IN (SELECT value FROM json_each(?))"
            " ORDER BY position, id",
            [dataset_id, json_list(ids)],
        )
        yield from (_sample(row) for row in rows)

    def sample_ids(self, dataset_id: int) -> list[int]:
        return self.sample_id_array(dataset_id).tolist()

    def sample_id_array(
        self,
        dataset_id: int,
        limit: int | None = None,
        *,
        upto: int | None = None,
        undecided: bool = False,
    ) -> array[int]:
        """The dataset's sample ids in source order (the first `limit`), 8 bytes an id, for
        the commands that walk a whole dataset: a list of 10,000,000 ids took 360 MB, and
        `score --limit 20000` at 10M peaked at 511 MB (242 at 1M). `upto`: only ids up to it
        (see `newest_sample_id`); `undecided`: only samples without a decision in force."""
        sql, params = "SELECT s.id FROM samples s WHERE s.dataset_id = ?", [dataset_id]
        if upto is not None:
            sql, params = f"{sql} AND s.id <= ?", [*params, upto]
        if undecided:
            sql += " AND NOT EXISTS (SELECT 1 FROM sample_state st WHERE st.sample_id = s.id)"
        sql += " ORDER BY s.position, s.id"
        if limit is not None:
            sql, params = f"{sql} LIMIT ?", [*params, max(limit, 0)]
        return array("q", (row[0] for row in self.conn.execute(sql, params)))

    def newest_sample_id(self) -> int:
        """The largest sample id in the store (0 when it has none). Ids only grow, so samples
        added after this call have larger ones."""
        return int(self.scalar("SELECT coalesce(max(id), 0) FROM samples"))

    def count_samples(self, dataset_id: int | None = None) -> int:
        return self.tallies(dataset_id).get(SAMPLES, 0)

    def decided_samples(
        self, dataset_id: int, *, suggestions: bool = False, chunk: int = 2000
    ) -> Iterator[list[tuple[Sample, SampleState | None, Suggestion | None]]]:
        """A dataset's samples in source order, in chunks, each with its state (None if never
        decided) and, if asked, its suggestion: what an export needs, streamed."""
        columns, joins = "", ""
        if suggestions:
            columns = (", sg.candidate_id, sg.rule, sg.reason, sg.confidence, sg.run_id,"
                       " sg.created_at, sg.decision")  # fmt: skip
            joins = " LEFT JOIN suggestions sg ON sg.sample_id = s.id"
        sql = (
            "SELECT s.*, st.status, st.review_id, st.candidate_id, st.annotator, st.decided_at"
            f"{columns} FROM samples s LEFT JOIN sample_state st ON st.sample_id = s.id{joins}"
            " WHERE s.dataset_id = ? ORDER BY s.position, s.id"
        )
        described, stream = self.stream(sql, [dataset_id], size=chunk)  # never all at once
        names = described[: -(12 if suggestions else 5)]
        width = len(names)
        while rows := list(itertools.islice(stream, chunk)):
            found = []
            for row in rows:
                sample = _sample(dict(zip(names, row[:width], strict=True)))
                status, review_id, candidate_id, annotator, decided_at = row[width : width + 5]
                state = None
                if status is not None:
                    state = SampleState(stored_id(sample), status, review_id,
                                        from_db_candidate(candidate_id), annotator, decided_at)  # fmt: skip
                suggestion = None
                if suggestions and row[width + 6] is not None:  # a suggestion's rule
                    cid, rule, reason, confidence, run_id, created_at, decision = row[width + 5 :]
                    suggestion = Suggestion(stored_id(sample), from_db_candidate(cid), rule, reason,
                                            confidence, run_id, created_at, decision)  # fmt: skip
                found.append((sample, state, suggestion))
            yield found

    def catalog_version(self) -> tuple[int, int]:
        """(max dataset id, max sample id): changes whenever a dataset or sample is added."""
        row = self.conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM datasets),"
            " (SELECT coalesce(max(id), 0) FROM samples)"
        ).fetchone()
        return row[0], row[1]

    def sample_dataset(self, sample_id: int) -> int | None:
        """The dataset a sample belongs to, or None if there is no such sample."""
        dataset_id: int | None = self.scalar(
            "SELECT dataset_id FROM samples WHERE id = ?", [sample_id]
        )
        return dataset_id
