"""Import reviews made elsewhere (plain JSONL, Argilla, Label Studio; see review_formats).

As every import: each record is read, validated and matched to its sample first, and one
InputError names the file and the record of the first problem; then everything is written in
one transaction. Each review keeps its origin (file, format, the tool's ids) in
`review_origins`, keyed by what it says, so importing the same file twice adds nothing.
Imported reviews join the review log (undo, agreement and export treat them as any other),
appended in order of their time (file order where times are equal or missing).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, ReflectionError
from ..formats.containers import read_records
from ..records import Candidate, Review, stored_id
from ..store import Store
from .adopt_files import id_key, norm
from .adopt_match import SampleIndex
from .review_formats import READERS, TEXT_FIELDS, Incoming, detect

IMPORTED_DECISIONS = ("accept", "edit", "reject", "skip")


@dataclass
class ReviewImportResult:
    dataset: str
    format: str
    read: int
    added: int
    skipped: int
    run_id: int | None = None


class _Samples(SampleIndex):
    """SampleIndex plus the lookups a review key needs."""

    def find(self, path: Path, item: Incoming) -> int:
        kind, value = item.key
        if kind == "sample_id":
            digits = id_key(value)
            sid = int(value) if digits and digits.isdigit() else None
            if sid is None or sid not in self.samples:
                raise InputError(path, f"no sample with id {value!r} in the dataset", **item.where)
            return sid
        if kind == "position":
            found = self.by("position").get(value if isinstance(value, int) else None, [])
            what = f"at position {value!r}"
        elif kind == "content_hash":
            found = [stored_id(s) for s in self.samples.values() if s.content_hash == value]
            what = f"with content hash {value!r}"
        elif kind == "content":
            found = self.by_text().get(tuple(_field_key(k, value[k]) for k in TEXT_FIELDS), [])
            what = "with this instruction, input and output"
        else:  # match: (field, value)
            name, text = value
            found = self.by_field(name).get(_field_key(name, text), [])
            what = f"whose {name!r} is {_short(text)}"
        if not found:
            raise InputError(path, f"no sample {what}", **item.where)
        if len(found) > 1:
            raise InputError(
                path, f"{len(found)} samples {what} ({', '.join(map(str, found[:5]))});"
                " name the sample by sample_id or another field", **item.where,
            )  # fmt: skip
        return found[0]

    def by_text(self) -> dict[Any, list[int]]:
        """Samples by instruction, input and output, whitespace normalised."""
        if "text" not in self._by:
            table: dict[Any, list[int]] = {}
            for s in self.samples.values():
                key = tuple(_field_key(k, getattr(s, k)) for k in TEXT_FIELDS)
                table.setdefault(key, []).append(stored_id(s))
            self._by["text"] = table
        return self._by["text"]

    def by_field(self, name: str) -> dict[Any, list[int]]:
        if name not in TEXT_FIELDS:
            return self.by(f"field:{name}")
        how = f"text:{name}"
        if how not in self._by:
            table: dict[Any, list[int]] = {}
            for sample in self.samples.values():
                table.setdefault(_field_key(name, getattr(sample, name)), []).append(
                    stored_id(sample)
                )
            self._by[how] = table
        return self._by[how]


def _field_key(name: str, value: Any) -> Any:
    if name in TEXT_FIELDS:
        return " ".join(value.split()) if isinstance(value, str) else None
    return id_key(value)


def _short(text: Any) -> str:
    text = repr(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _import_key(item: Incoming, sample_id: int, edited: dict[str, str]) -> str:
    payload = [sample_id, item.decision, item.version, edited, item.reviewer, item.time, item.note]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _check(
    store: Store, path: Path, item: Incoming, sample_id: int, index: _Samples
) -> dict[str, str]:
    """Validate one matched review; returns the full edited text (edits) or {}."""
    where = item.where
    if item.decision not in IMPORTED_DECISIONS:
        raise InputError(
            path, f"unknown decision {item.decision!r} (expected {', '.join(IMPORTED_DECISIONS)})",
            **where,
        )  # fmt: skip
    if not item.reviewer:
        raise InputError(path, "no reviewer (give `reviewer`, or --reviewer for all)", **where)
    for name, cid in (("version", item.version), ("edited_from", item.edited_from)):
        if cid is not None:
            owner = store.candidates_by_id([cid]).get(cid)
            if owner is None or owner.sample_id != sample_id:
                raise InputError(
                    path, f"{name} {cid} is not a version of sample {sample_id}", **where
                )
    if item.decision != "edit":
        if item.edited:
            raise InputError(path, f"edited text given with decision {item.decision!r}", **where)
        return {}
    base = (
        store.candidates_by_id([item.edited_from])[item.edited_from]
        if item.edited_from
        else index.samples[sample_id]
    )
    unknown = sorted(set(item.edited) - set(TEXT_FIELDS))
    if unknown:
        raise InputError(path, f"unknown edited field(s) {', '.join(unknown)}", **where)
    edited = {k: item.edited.get(k, getattr(base, k)) for k in TEXT_FIELDS}
    if not edited["instruction"].strip() or not edited["output"].strip():
        raise InputError(path, "an edit needs an instruction and an output", **where)
    if all(norm(edited[k]) == norm(getattr(base, k)) for k in TEXT_FIELDS):
        raise InputError(path, "the edited text is the same as the version it edits", **where)
    return edited


def import_reviews(
    store: Store, dataset: str | int, path: str | Path, *, default_reviewer: str = ""
) -> ReviewImportResult:
    """Validate every review of a file, then add the new ones in one transaction."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    rows = read_records(path, "json")
    if not rows:
        raise InputError(path, "the file holds no records")
    fmt = detect(path, rows[0][1], rows[0][0])
    items = [
        i for where, record in rows for i in READERS[fmt](path, where, record, default_reviewer)
    ]
    ds = store.dataset(dataset)
    index = _Samples(store, ds.id)
    planned = []
    for order, item in enumerate(items):
        sample_id = index.find(path, item)
        edited = _check(store, path, item, sample_id, index)
        item.origin = {"file": path.name, **item.origin, "where": item.where}
        planned.append((item.time, order, item, sample_id, edited))
    planned.sort(key=lambda p: (p[0], p[1]))
    keys = {id(p[2]): _import_key(p[2], p[3], p[4]) for p in planned}
    known = store.known_review_keys(keys.values())
    added = 0
    settings = {"path": str(path), "format": fmt}
    with store.run("import-reviews", ds.id, settings) as run, store.transaction():
        for _, _, item, sample_id, edited in planned:
            key = keys[id(item)]
            if key in known:
                continue
            known.add(key)
            candidate_id = item.version
            if item.decision == "edit":
                candidate_id = store.add_candidate(
                    Candidate(
                        sample_id=sample_id, kind="edit", parent_id=item.edited_from,
                        annotator=item.reviewer, origin={"imported": item.origin},
                        instruction=edited["instruction"], input=edited["input"],
                        output=edited["output"],
                    )
                )  # fmt: skip
            try:
                review = store.add_review(
                    Review(
                        sample_id=sample_id, decision=item.decision, candidate_id=candidate_id,
                        annotator=item.reviewer, note=item.note, created_at=item.time,
                        tags=["imported"], run_id=run.id,
                    )
                )  # fmt: skip
            except ReflectionError as exc:
                raise InputError(path, str(exc), **item.where) from None
            store.add_review_origin(stored_id(review), key, item.origin)
            added += 1
        run.counters = {"read": len(planned), "added": added, "skipped": len(planned) - added}
    return ReviewImportResult(ds.name, fmt, len(planned), added, len(planned) - added, run.id)
