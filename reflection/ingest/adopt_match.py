"""Matching imported records to a dataset's samples, strictly: by position, content or an id.

A record that carries its original (paired, pairs) matches the sample with the same text
(whitespace at the ends of lines aside) and adds it when none has it; a record that does not
(aligned, raw) must name exactly one sample, and no two records the same one. Anything else is
an InputError naming the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records import Sample, stored_id
from ..store import Store
from .adopt_files import Row, content_key, id_key


class SampleIndex:
    """The dataset's samples, looked up the ways a record may name one."""

    def __init__(self, store: Store, dataset_id: int | None):
        self.samples: dict[int, Sample] = {}
        if dataset_id is not None:
            self.samples = {stored_id(s): s for s in store.samples(dataset_id)}
        self._by: dict[str, dict[Any, list[int]]] = {}

    def by(self, how: str) -> dict[Any, list[int]]:
        if how not in self._by:
            table: dict[Any, list[int]] = {}
            for sample in self.samples.values():
                key: Any
                if how == "content":
                    key = content_key(sample.instruction, sample.input, sample.output)
                elif how == "prompt":
                    key = content_key(sample.instruction, sample.input, "")
                elif how == "position":
                    key = sample.position
                else:  # field:NAME
                    key = field_key(sample, how.removeprefix("field:"))
                if key is not None:
                    table.setdefault(key, []).append(stored_id(sample))
            self._by[how] = table
        return self._by[how]


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


def _unmatched(index: SampleIndex, name: str, key: str) -> str:
    """Why no sample has a record's value of field NAME, naming the side that lacks it."""
    if name in TEXT_FIELDS:
        return f"no sample's {name!r} equals the record's {name!r} (whitespace normalised)"
    if index.samples and not index.by(f"field:{name}"):
        return (
            f"the dataset's samples carry no field {name!r} (the record's {name!r} is {key!r});"
            " match by a field both sides have: instruction, input, output or an extra field"
        )
    return f"id {key!r} has no sample in the dataset"


def _original_key(original: Sample) -> tuple[str, str, str]:
    return content_key(original.instruction, original.input, original.output)


def _candidates_of(
    path: Path, row: Row, position: int, index: SampleIndex, match: str
) -> list[int]:
    """The samples a record names (several: ambiguous; none: unknown or an original to add)."""
    carries = row.original is not None
    if match == "position":
        found = index.by("position").get(position, [])
        if not found:
            raise InputError(path, f"no sample at position {position}", **row.where)
        return found
    if match == "hash" and row.original is not None:
        return index.by("content").get(_original_key(row.original), [])
    if match == "hash":
        prompt = content_key(row.new["instruction"], row.new["input"], "")
        found = index.by("prompt").get(prompt, [])
        if not found:
            raise InputError(
                path, "no sample has this instruction and input (a new instruction cannot be"
                " matched by hash; use --match position or field:NAME)", **row.where,
            )  # fmt: skip
        return found
    assert row.key is not None  # the caller keys every record matched by field
    found = index.by(match).get(row.key, [])
    if not found and not carries:
        raise InputError(
            path, _unmatched(index, match.removeprefix("field:"), row.key), **row.where
        )
    return found


def match_rows(
    path: Path, rows: list[Row], index: SampleIndex, match: str, shape: str
) -> list[Sample]:
    """Set each row's sample_id (or new_index); returns the originals to add.

    Records that carry their original (paired, pairs) may add it when no sample has it, and
    must agree with the sample they name; the others must name a sample, each a different one.
    """
    if match == "position" and len(rows) != len(index.samples):
        raise InputError(
            path,
            f"{len(rows):,} records but the dataset has {len(index.samples):,} samples; a file"
            " aligned by position needs one record per sample (match by hash or field:NAME"
            " for a subset)",
        )
    if match == "hash" and shape == "raw":
        raise InputError(
            path, "raw oracle replies carry no original to match by hash; use --match position"
            " or --match field:NAME"
        )  # fmt: skip
    by_field = match.startswith("field:")
    ids_seen: dict[str, int] = {}  # id value -> record number
    samples_seen: dict[int, int] = {}  # sample id -> record number
    added: dict[tuple[str, str, str], int] = {}
    new_samples: list[Sample] = []
    for position, row in enumerate(rows):
        if by_field:
            name = match.removeprefix("field:")
            source = row.record if isinstance(row.record, dict) else {}
            if name in TEXT_FIELDS and name in row.new:  # the record's text, as read
                source = row.new
            row.key = field_key(source, name)
            if row.key is None:
                has = name in source
                raise InputError(
                    path, f"no usable id in field {name!r} of the record"
                    + ("" if has else f" (it has no field {name!r})"), **row.where,
                )  # fmt: skip
            if row.key in ids_seen:
                what = f"{name!r}" if name in TEXT_FIELDS else f"id {row.key!r}"
                raise InputError(
                    path, f"duplicate {what} (also record {ids_seen[row.key]})", **row.where
                )
            ids_seen[row.key] = row.number
        found = _candidates_of(path, row, position, index, match)
        if len(found) > 1:
            shared = f"; {len(found)} samples share its {match.removeprefix('field:')!r}"
            raise InputError(
                path,
                f"matches {len(found)} samples ({', '.join(map(str, found[:5]))})"
                + (
                    shared + ": match by another field"
                    if by_field
                    else "; match by field:NAME to say which"
                ),
                **row.where,
            )
        if not found:  # an original not yet in the dataset
            assert row.original is not None  # only a record that carries one matches nothing
            row.new_index = added.setdefault(_original_key(row.original), len(new_samples))
            if row.new_index == len(new_samples):
                new_samples.append(row.original)
            continue
        row.sample_id = sample_id = found[0]
        sample = index.samples[sample_id]
        if row.original is not None:
            if content_key(sample.instruction, sample.input, sample.output) != _original_key(
                row.original
            ):
                raise InputError(
                    path,
                    f"its original differs from sample {sample.id} (position {sample.position})",
                    **row.where,
                )
        elif sample_id in samples_seen and not by_field:
            raise InputError(
                path,
                f"matches sample {sample_id}, as record {samples_seen[sample_id]} does",
                **row.where,
            )
        samples_seen.setdefault(sample_id, row.number)
    return new_samples
