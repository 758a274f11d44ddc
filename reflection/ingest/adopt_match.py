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
                    key = id_key(sample.meta.get(how.removeprefix("field:")))
                if key is not None:
                    table.setdefault(key, []).append(stored_id(sample))
            self._by[how] = table
        return self._by[how]


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
    found = index.by(match).get(row.key, [])
    if not found and not carries:
        raise InputError(path, f"id {row.key!r} has no sample in the dataset", **row.where)
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
            row.key = id_key(row.record.get(name)) if isinstance(row.record, dict) else None
            if row.key is None:
                raise InputError(path, f"no usable id in field {name!r}", **row.where)
            if row.key in ids_seen:
                raise InputError(
                    path, f"duplicate id {row.key!r} (also record {ids_seen[row.key]})", **row.where
                )
            ids_seen[row.key] = row.number
        found = _candidates_of(path, row, position, index, match)
        if len(found) > 1:
            raise InputError(
                path,
                f"matches {len(found)} samples ({', '.join(map(str, found[:5]))}); match by"
                " field:NAME to say which",
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
