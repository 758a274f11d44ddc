"""Import reflections made elsewhere as candidates, so people can review them like our own.

Four shapes of file (detected from the first record unless given):

- `paired`: each record holds the original and its new version, e.g. the Reflection-Tuning
  seed's intermediate files (`instruction`, `input`, `output` + `new_instruct`, `new_input`,
  `new_answer`, or `better_answer`). Originals not yet in the dataset are added.
- `aligned`: a second dataset (any format `reflection import` reads) whose records are new
  versions of samples already imported, matched by position or by a shared id field.
- `raw`: raw oracle replies (a JSON list or JSONL of strings, or records with a `raw` field),
  aligned with the samples and read with `reflection.reflect.parse`; replies that do not parse are kept
  as candidates with their raw text, status and reason.
- `pairs`: one instruction with two models' answers (`Answer1`, `Answer2`, as Cherry LLM's
  evaluation files), optionally with an LLM judge's `scores` / `scores_reverse` and reviews.
  Answer1 becomes the original, Answer2 the candidate, and the judge's scores become scores.

Matching is strict: a record count that differs, a position or id with no sample, an id given
twice or a record that matches two samples is an InputError naming the file and record, and
nothing is written. Every record is validated and matched before one transaction writes
samples, candidates, scores and the run. Each candidate's `origin` says where it came from
(file, record number, stated model) and its job key is derived from the file's content, so
importing the same file again adds nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, ReflectionError
from ..records import Candidate, Sample, Score, content_hash, stored_id
from ..reflect.parse import parse
from ..store import Store
from .adopt_files import (
    FIELDS,
    KINDS,
    SHAPES,
    Row,
    aligned_rows,
    content_key,
    detect_shape,
    norm,
    read_rows,
    rows_for_shape,
)
from .adopt_match import SampleIndex, match_rows

MATCHES = ("position", "hash", "field:NAME")
JUDGE_METRIC = "judge"


@dataclass
class AdoptResult:
    """What one candidate import did."""

    dataset: str
    shape: str
    kind: str
    match: str
    records: int
    samples_added: int = 0
    candidates_added: int = 0
    already_imported: int = 0
    unchanged: int = 0  # records identical to their original: no candidate made
    statuses: dict[str, int] = field(default_factory=dict)
    scores: int = 0
    judge_unparsed: int = 0
    run_id: int | None = None
    matched: int = 0  # records that named a sample already in the dataset


# --- building candidates ---------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for part in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(part.relative_to(path).as_posix().encode() + part.read_bytes())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _infer_kind(shape: str, rows: list[Row], index: SampleIndex) -> str:
    if shape == "pairs":
        return "other"
    if shape == "raw":
        return (
            "instruction"
            if any(parse(r.raw, "instruction").instruction for r in rows)
            else "response"
        )
    if shape == "paired":
        return "instruction" if any("instruction" in r.new for r in rows) else "response"
    for row in rows:  # aligned: a changed instruction or input makes it instruction reflection
        assert row.sample_id is not None  # aligned rows all matched a sample
        sample = index.samples[row.sample_id]
        if norm(row.new["instruction"]) != norm(sample.instruction) or norm(
            row.new["input"]
        ) != norm(sample.input):
            return "instruction"
    return "response"


def _version(row: Row, sample: Sample, kind: str) -> Candidate:
    """The candidate's text and parse status (sample_id is set later)."""
    candidate = Candidate(sample_id=0, kind=kind, model=row.model)
    if row.raw is not None:
        template = "instruction" if kind == "instruction" else "response"
        parsed = parse(row.raw, template)
        candidate.raw, candidate.critique = row.raw, parsed.critique
        candidate.status, candidate.error = parsed.status, parsed.reason
        if template == "instruction":
            candidate.instruction, candidate.input = parsed.instruction, parsed.input
        else:
            candidate.instruction, candidate.input = sample.instruction, sample.input
        candidate.output = parsed.output
        return candidate
    new = row.new
    rewritten = "instruction" in new
    candidate.instruction = new.get("instruction", sample.instruction)
    candidate.input = new.get("input", "" if rewritten else sample.input)
    candidate.output = new.get("output", sample.output)
    candidate.critique = new.get("critique", "")
    return candidate


def _judge_scores(
    row: Row, sample_id: int, candidate_id: int | None, scorer: str, run_id: int | None
) -> list[Score]:
    """The judge's scores for the original (Answer1) and candidate (Answer2), order-averaged."""
    forward, reverse = row.judge.get("scores"), row.judge.get("scores_reverse")
    firsts, seconds = [], []
    if forward:
        firsts.append(forward[0])
        seconds.append(forward[1])
    if reverse:  # Answer2 was shown first: [score of Answer2, score of Answer1]
        firsts.append(reverse[1])
        seconds.append(reverse[0])
    if not firsts:
        return []
    detail = {k: v for k, v in row.judge.items() if v is not None}
    detail["record"] = row.number
    return [
        Score(sample_id, JUDGE_METRIC, sum(values) / len(values), scorer, cid, detail, run_id)
        for cid, values in ((None, firsts), (candidate_id, seconds))
    ]


# --- the import ------------------------------------------------------------------------------


def _pick_dataset(store: Store, dataset: str | None, shape: str, path: Path):
    """The dataset to import into; paired and pairs files may create it."""
    creates = shape in ("paired", "pairs")
    if dataset is not None:
        known = {d.name: d for d in store.datasets()}
        if dataset in known:
            return known[dataset], dataset
        if creates:
            return None, dataset
        return store.dataset(dataset), dataset  # raises NotFoundError naming what exists
    datasets = store.datasets()
    if len(datasets) == 1:
        return datasets[0], datasets[0].name
    if not datasets and creates:
        return None, path.stem
    if not datasets:
        raise ReflectionError(
            f"{store.path} has no datasets yet: import the originals first (`reflection import`)"
        )
    names = ", ".join(d.name for d in datasets)
    raise ReflectionError(f"{store.path} has several datasets ({names}); pick one with --dataset")


def import_candidates(
    store: Store,
    path: str | Path,
    *,
    dataset: str | None = None,
    shape: str | None = None,
    kind: str | None = None,
    match: str | None = None,
    model: str = "",
    original_model: str = "",
    judge: str = "",
    fields: dict[str, str] | None = None,
    fmt: str | None = None,
    split: str | None = None,
    source_name: str | None = None,
) -> AdoptResult:
    """Validate and match every record of a file, then add its candidates in one transaction.

    `fields` maps our field names (see FIELDS) to the file's; `fmt` and `fields` for
    instruction/input/output also apply to an aligned dataset; `split` picks the split of a
    `datasets` folder holding a DatasetDict. `source_name` is what origins
    call the file (e.g. an uploaded file's name) instead of its path.
    """
    path = Path(path)
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ReflectionError(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    if shape is not None and shape not in SHAPES:
        raise ReflectionError(f"unknown shape {shape!r} (expected {', '.join(SHAPES)})")
    if kind is not None and kind not in KINDS:
        raise ReflectionError(f"unknown kind {kind!r} (expected {', '.join(KINDS)})")
    if (
        match is not None
        and match not in ("position", "hash")
        and not (match.startswith("field:") and match.removeprefix("field:").strip())
    ):
        raise ReflectionError(f"unknown match {match!r} (expected position, hash or field:NAME)")
    rows_raw, meta = read_rows(path, split)
    shape = shape or detect_shape(rows_raw[0][1], fields)
    model = model or str(meta.get("fname2") or meta.get("model2") or "")
    original_model = original_model or str(meta.get("fname1") or meta.get("model1") or "")
    if shape == "aligned":
        columns = {k: v for k, v in fields.items() if k in ("instruction", "input", "output")}
        wheres = [where for where, _ in rows_raw]
        rows = aligned_rows(path, fmt, columns or None, model, wheres, split)
    else:
        rows = rows_for_shape(path, shape, rows_raw, fields, meta, model)
    match = match or ("hash" if shape in ("paired", "pairs") else "position")
    ds, name = _pick_dataset(store, dataset, shape, Path(source_name or path))
    index = SampleIndex(store, ds.id if ds else None)
    new_samples = match_rows(path, rows, index, match, shape)
    kind = kind or _infer_kind(shape, rows, index)

    digest = _file_digest(path)
    # Records are keyed by file and record number; the splits of one folder are different files.
    # The split read (named in each record's place when the folder had several) keys them,
    # whether it was asked for or the default.
    split_read = rows_raw[0][0].get("split")
    source_key = (
        hashlib.sha256(f"{digest}:{split_read}".encode()).hexdigest() if split_read else digest
    )
    result = AdoptResult(name, shape, kind, match, len(rows))
    result.matched = sum(1 for row in rows if row.sample_id is not None)
    settings = {"path": source_name or str(path), "sha256": digest, "shape": shape, "kind": kind,
                "match": match, "model": model, "fields": fields,
                **({"split": split_read} if split_read else {})}  # fmt: skip
    with store.transaction():
        ds = ds or store.ensure_dataset(name)
        with store.run("import-candidates", ds.id, settings) as run:
            result.run_id = run.id
            if new_samples:
                start = store.max_position(ds.id)
                first = 0 if start is None else start + 1
                for offset, sample in enumerate(new_samples):
                    sample.position = first + offset
                    sample.source = source_name or str(path)
                result.samples_added, _ = store.add_samples(ds.id, new_samples)
                ids = store.sample_ids_by_hash(ds.id, [content_hash(s) for s in new_samples])
                for sample in new_samples:
                    sample.id = ids[content_hash(sample)]
                    index.samples[sample.id] = sample
            candidates, pending_scores = [], []
            for row in rows:
                if row.sample_id is not None:
                    sample_id = row.sample_id
                else:
                    assert row.new_index is not None  # it matched nothing: its original is new
                    sample_id = stored_id(new_samples[row.new_index])
                sample = index.samples[sample_id]
                candidate = _version(row, sample, kind)
                if row.raw is None and content_key(
                    candidate.instruction, candidate.input, candidate.output
                ) == content_key(sample.instruction, sample.input, sample.output):
                    result.unchanged += 1
                    continue
                candidate.sample_id, candidate.run_id = sample_id, run.id
                candidate.job_key = f"import:{ds.id}:{source_key[:24]}:{row.number}"
                candidate.origin = {
                    "source": "import",
                    "file": source_name or str(path),
                    "sha256": digest,
                    "record": row.number,
                    **row.where,
                    "shape": shape,
                    "model": row.model,
                }
                if shape == "pairs" and original_model:
                    candidate.origin["original_model"] = original_model
                candidates.append(candidate)
                pending_scores.append(row)
            done = store.done_job_keys(c.job_key for c in candidates if c.job_key)
            result.already_imported = len(done)
            store.add_candidates(candidates)
            result.candidates_added = len(candidates) - len(done)
            for candidate in candidates:
                if candidate.job_key not in done:
                    result.statuses[candidate.status] = result.statuses.get(candidate.status, 0) + 1
            scores = []
            scorer = judge or "imported-judge"
            for row, candidate in zip(pending_scores, candidates, strict=True):
                if row.judge.get("scores", 0) is None or row.judge.get("scores_reverse", 0) is None:
                    result.judge_unparsed += 1
                scores += _judge_scores(row, candidate.sample_id, candidate.id, scorer, run.id)
            result.scores = store.put_scores(scores) if scores else 0
            run.counters = {
                "records": result.records, "samples_added": result.samples_added,
                "candidates_added": result.candidates_added,
                "already_imported": result.already_imported, "unchanged": result.unchanged,
                "statuses": result.statuses, "scores": result.scores,
                "judge_unparsed": result.judge_unparsed,
            }  # fmt: skip
    return result


def import_candidates_bytes(store: Store, data: bytes, filename: str, **options) -> AdoptResult:
    """import_candidates for a file's content (an upload): written to a temporary file first."""
    suffix = Path(filename).suffix or ".json"
    with tempfile.TemporaryDirectory(prefix="reflection-upload-") as folder:
        temp = Path(folder) / f"upload{suffix}"
        temp.write_bytes(data)
        try:
            return import_candidates(store, temp, source_name=filename, **options)
        except InputError as exc:
            # Name the uploaded file, not the temporary copy.
            raise InputError(filename, exc.problem, line=exc.line, record=exc.record) from None


def summary(result: AdoptResult, path: str | Path) -> str:
    """One line saying what an import did."""
    parts = [f"{result.candidates_added:,} candidates added"]
    if result.samples_added:
        parts.append(f"{result.samples_added:,} originals added")
    if result.already_imported:
        parts.append(f"{result.already_imported:,} already imported")
    if result.unchanged:
        parts.append(f"{result.unchanged:,} identical to their original (skipped)")
    if any(status != "ok" for status in result.statuses):
        parts.append("parse " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.statuses.items())))
    if result.scores:
        parts.append(f"{result.scores:,} judge scores")
    if result.judge_unparsed:
        parts.append(f"{result.judge_unparsed:,} records with unparsed judge scores")
    parts.append(f"{result.matched:,} of {result.records:,} records matched a sample")
    return (
        f"Imported {path} ({result.shape}, kind {result.kind}, matched by {result.match}) into"
        f" dataset {result.dataset!r}: " + "; ".join(parts)
    )


def parse_fields(items: str | list[str] | tuple[str, ...]) -> dict[str, str]:
    """A field mapping from "FIELD=NAME" items (or one comma-separated string of them)."""
    if isinstance(items, str):
        items = [item for item in items.split(",") if item.strip()]
    mapping = {}
    for item in items:
        ours, sep, theirs = (part.strip() for part in item.partition("="))
        if not sep or ours not in FIELDS or not theirs:
            raise ReflectionError(
                f"{item.strip()!r}: expected FIELD=NAME with FIELD one of {', '.join(FIELDS)}"
            )
        mapping[ours] = theirs
    return mapping
