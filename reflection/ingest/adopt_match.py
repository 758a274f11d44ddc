"""Matching imported records to a dataset's samples, strictly: by position, content or an id.

A record that carries its original (paired, pairs) matches the sample with the same text
(whitespace at the ends of lines aside) and adds it when none has it; a record that does not
(aligned, raw) must name exactly one sample, and no two records the same one. Anything else is
an InputError naming the record.

Records come a chunk at a time and the samples are looked up in the store
(`Store.sample_lookup`), so a file of ten million records matches in the memory of a chunk.
Within a chunk, the first record in file order with a problem is the one reported.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records import Sample, stored_id
from ..store import Store
from ..store.lookup import SampleLookup
from .adopt_files import Row, content_key, id_key, same_content


class TooManyRecords(Exception):
    """Matching by position met a record past the last sample: the caller counts the file."""


def _digest(key: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()


def _content(sample: Sample) -> str:
    return _digest(content_key(sample.instruction, sample.input, sample.output))


def _prompt(sample: Sample) -> str:
    return _digest(content_key(sample.instruction, sample.input, ""))


TEXT_FIELDS = ("instruction", "input", "output")


def field_key(sample_or_record: Any, name: str) -> str | None:
    """The value --match field:NAME compares: a core field's text with its whitespace
    normalised, else the id in the sample's extra field (or the record's field) NAME."""
    if isinstance(sample_or_record, Sample):
        if name in TEXT_FIELDS:
            return " ".join(getattr(sample_or_record, name).split())
        return id_key(sample_or_record.meta.get(name))
    value = sample_or_record.get(name) if isinstance(sample_or_record, dict) else None
    if name in TEXT_FIELDS:
        return " ".join(value.split()) if isinstance(value, str) else None
    return id_key(value)


def _stored_key(name: str, key: str) -> str:
    """What the lookup keeps for a field's value: a core field's text by its digest."""
    return _digest((key,)) if name in TEXT_FIELDS else key


def _original_key(original: Sample) -> tuple[str, str, str]:
    return content_key(original.instruction, original.input, original.output)


def _record_key(row: Row, name: str) -> tuple[str | None, bool]:
    """A record's value of field NAME (the text as read, for a core field), and whether the
    record has that field at all."""
    source = row.record if isinstance(row.record, dict) else {}
    if name in TEXT_FIELDS and name in row.new:
        source = row.new
    return field_key(source, name), name in source


class Matcher:
    """Matches chunks of rows in file order; `samples` holds the matched samples of the
    latest chunk (by id) and `new` counts the originals this file adds."""

    def __init__(self, path: Path, lookup: SampleLookup, match: str, shape: str):
        self.path, self.lookup, self.match, self.shape = path, lookup, match, shape
        self.by_field = match.startswith("field:")
        self.total = lookup.count()
        self.position = 0  # records matched so far
        self.new = 0
        self.name = match.removeprefix("field:") if self.by_field else ""
        self.samples: dict[int, Sample] = {}
        if match == "hash" and shape == "raw":
            raise InputError(
                path, "raw oracle replies carry no original to match by hash; use --match"
                " position or --match field:NAME"
            )  # fmt: skip

    def count_error(self, records: int) -> InputError:
        return InputError(
            self.path,
            f"{records:,} records but the dataset has {self.total:,} samples; a file aligned by"
            " position needs one record per sample (match by hash or field:NAME for a subset)",
        )

    def finish(self) -> None:
        if self.match == "position" and self.position != self.total:
            raise self.count_error(self.position)

    def _found(self, rows: list[Row]) -> list[list[int] | None]:
        """The samples each row names (None: the row is itself in error, raised in order)."""
        if self.match == "position":
            start = self.position
            if start + len(rows) > self.total:
                raise TooManyRecords
            at = self.lookup.by_position(start, start + len(rows) - 1)
            return [at.get(start + i, []) for i in range(len(rows))]
        if self.match == "hash":
            carries = rows[0].original is not None
            how, digest_of = ("content", _content) if carries else ("prompt", _prompt)
            self.lookup.build(how, digest_of)
            keys = [
                _digest(_original_key(r.original)) if r.original is not None
                else _digest(content_key(r.new["instruction"], r.new["input"], ""))
                for r in rows
            ]  # fmt: skip
            table = self.lookup.by_key(how, keys)
            return [table.get(key, []) for key in keys]
        name = self.name

        def key_of(sample: Sample) -> str | None:
            key = field_key(sample, name)
            return None if key is None else _stored_key(name, key)

        self.lookup.build(self.match, key_of)
        for row in rows:
            row.key, _ = _record_key(row, name)
        stored = [_stored_key(name, r.key) if r.key is not None else None for r in rows]
        table = self.lookup.by_key(self.match, [key for key in stored if key is not None])
        return [table.get(key, []) if key is not None else None for key in stored]

    def match_rows(self, rows: list[Row]) -> list[Sample]:
        """Set each row's sample_id (or new_index); returns the originals to add."""
        if not rows:
            return []
        found = self._found(rows)
        path = self.path
        ids_earlier: list[int | None] = [None] * len(rows)
        if self.by_field:
            keyed = [(_stored_key(self.name, r.key), r.number) for r in rows if r.key is not None]
            earlier = iter(self.lookup.remember("id", keyed))
            ids_earlier = [next(earlier) if r.key is not None else None for r in rows]
        matched = sorted({f[0] for f in found if f and len(f) == 1})
        self.samples = self.lookup.samples(matched)
        seen = iter(self.lookup.remember(
            "sample", [(str(f[0]), r.number) for f, r in zip(found, rows, strict=True)
                       if f and len(f) == 1]
        ))  # fmt: skip
        adds = [ids == [] and row.original is not None and self.match != "position"
                for row, ids in zip(rows, found, strict=True)]  # fmt: skip
        added = iter(self.lookup.remember(
            "new", [(_digest(_original_key(r.original)), r.number)
                    for r, a in zip(rows, adds, strict=True) if a and r.original is not None]
        ))  # fmt: skip
        new_samples: list[Sample] = []
        for offset, (row, ids) in enumerate(zip(rows, found, strict=True)):
            position = self.position + offset
            if ids is None:  # matched by field, and the record has no usable value
                _, has = _record_key(row, self.name)
                raise InputError(
                    path, f"no usable id in field {self.name!r} of the record"
                    + ("" if has else f" (it has no field {self.name!r})"), **row.where,
                )  # fmt: skip
            if ids_earlier[offset] is not None:
                what = f"{self.name!r}" if self.name in TEXT_FIELDS else f"id {row.key!r}"
                raise InputError(
                    path, f"duplicate {what} (also record {ids_earlier[offset]})", **row.where
                )
            self._check_known(row, ids, position)
            if len(ids) > 1:
                shared = f"; {len(ids)} samples share its {self.name!r}: match by another field"
                raise InputError(
                    path,
                    f"matches {len(ids)} samples ({', '.join(map(str, ids[:5]))})"
                    + (shared if self.by_field else "; match by field:NAME to say which"),
                    **row.where,
                )
            if not ids:  # an original not yet in the dataset (once, however many name it)
                assert row.original is not None  # only a record that carries one matches nothing
                row.new_index = self.new
                if next(added) is None:
                    row.original.position = self.new
                    new_samples.append(row.original)
                    self.new += 1
                continue
            row.sample_id = sample_id = ids[0]
            first = next(seen)
            sample = self.samples[sample_id]
            if row.original is not None:
                if not same_content(sample, row.original):
                    raise InputError(
                        path,
                        f"its original differs from sample {sample.id} (position {sample.position})",
                        **row.where,
                    )
            elif first is not None and not self.by_field:
                raise InputError(
                    path, f"matches sample {sample_id}, as record {first} does", **row.where
                )
        self.position += len(rows)
        return new_samples

    def _check_known(self, row: Row, ids: list[int], position: int) -> None:
        """A record must name a sample by position; by hash or id, unless it carries one."""
        if ids:
            return
        if self.match == "position":
            raise InputError(self.path, f"no sample at position {position}", **row.where)
        if row.original is not None:
            return
        if self.match == "hash":
            raise InputError(
                self.path, "no sample has this instruction and input (a new instruction cannot"
                " be matched by hash; use --match position or field:NAME)", **row.where,
            )  # fmt: skip
        assert row.key is not None  # a record without one was reported before
        raise InputError(self.path, self._unmatched(row.key), **row.where)

    def _unmatched(self, key: str) -> str:
        """Why no sample has a record's value of field NAME, naming the side that lacks it."""
        name = self.name
        if name in TEXT_FIELDS:
            return f"no sample's {name!r} equals the record's {name!r} (whitespace normalised)"
        if self.total and not self.lookup.has_keys(self.match):
            return (
                f"the dataset's samples carry no field {name!r} (the record's {name!r} is {key!r});"
                " match by a field both sides have: instruction, input, output or an extra field"
            )
        return f"id {key!r} has no sample in the dataset"


class SampleIndex:
    """A dataset's samples in memory, looked up the ways a record may name one: for review
    imports (reflection.ingest.reviews), whose files are a team's decisions, not a dataset.
    Candidate imports look samples up in the store instead (`Matcher`)."""

    def __init__(self, store: Store, dataset_id: int | None):
        self.samples: dict[int, Sample] = {}
        if dataset_id is not None:
            self.samples = {stored_id(s): s for s in store.samples(dataset_id)}
        self._by: dict[str, dict[Any, list[int]]] = {}

    def by(self, how: str) -> dict[Any, list[int]]:
        """Sample ids by `position` or `field:NAME` (see field_key)."""
        if how not in self._by:
            table: dict[Any, list[int]] = {}
            for sample in self.samples.values():
                key: Any = (
                    sample.position
                    if how == "position"
                    else field_key(sample, how.removeprefix("field:"))
                )
                if key is not None:
                    table.setdefault(key, []).append(stored_id(sample))
            self._by[how] = table
        return self._by[how]
