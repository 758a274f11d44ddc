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
import itertools
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ReflectionError
from ..progress import Progress, quiet
from ..records import Candidate, Sample, stored_id
from ..reflect.parse import parse
from ..store import Store
from ..store.candidate_staging import CandidateStaging
from ..store.space import CANDIDATES_NEED, import_space, index_space
from .adopt_files import (
    FIELDS,
    KINDS,
    SHAPES,
    Row,
    aligned_rows,
    detect_shape,
    file_digest,
    iter_rows,
    parse_fields,  # noqa: F401 (the CLI and the Import page call adopt.parse_fields)
    rows_for_shape,
    same_content,
    same_text,
)
from .adopt_match import Matcher, TooManyRecords

MATCHES = ("position", "hash", "field:NAME")
CHUNK = 2000  # records read, matched and staged at a time
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


def _rewrites_instruction(shape: str, row: Row, sample: Sample, candidate: Candidate) -> bool:
    """Whether this record is evidence of instruction reflection (for a kind not given)."""
    if shape == "raw":
        return bool(candidate.instruction)  # parsed with the instruction template
    if shape == "paired":
        return "instruction" in row.new
    # aligned: a changed instruction or input
    return not same_text(row.new["instruction"], sample.instruction) or not same_text(
        row.new["input"], sample.input
    )


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


def _judge_rows(row: Row, suffix: str, scorer: str) -> list[tuple[Any, ...]]:
    """The judge's scores for the original (Answer1) and candidate (Answer2), order-averaged,
    as staged rows (job key suffix, of the candidate, metric, scorer, value, detail)."""
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
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True)
    return [
        (suffix, of_candidate, JUDGE_METRIC, scorer, sum(values) / len(values), text)
        for of_candidate, values in ((False, firsts), (True, seconds))
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
    progress: Progress | None = None,
) -> AdoptResult:
    """Validate and match every record of a file, then add its candidates in one transaction.

    `fields` maps our field names (see FIELDS) to the file's; `fmt` and `fields` for
    instruction/input/output also apply to an aligned dataset; `split` picks the split of a
    `datasets` folder holding a DatasetDict. `source_name` is what origins
    call the file (e.g. an uploaded file's name) instead of its path. `progress` is told
    how far it got, as `import_dataset`'s is.
    """
    tell = progress or quiet
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
    records, meta = iter_rows(path, split)
    first_where, first = next(records)
    records = itertools.chain([(first_where, first)], records)
    shape = shape or detect_shape(first, fields)
    model = model or str(meta.get("fname2") or meta.get("model2") or "")
    original_model = original_model or str(meta.get("fname1") or meta.get("model1") or "")
    if shape == "aligned":
        columns = {k: v for k, v in fields.items() if k in ("instruction", "input", "output")}
        rows = aligned_rows(path, fmt, columns or None, model, split)
    else:
        rows = rows_for_shape(path, shape, records, fields, meta, model)
    match = match or ("hash" if shape in ("paired", "pairs") else "position")
    ds, name = _pick_dataset(store, dataset, shape, Path(source_name or path))
    digest = file_digest(path)
    # Records are keyed by file and record number; the splits of one folder are different files.
    # The split read (named in each record's place when the folder had several) keys them,
    # whether it was asked for or the default.
    split_read = first_where.get("split")
    source_key = (
        hashlib.sha256(f"{digest}:{split_read}".encode()).hexdigest() if split_read else digest
    )
    source = _Source(source_name or str(path), digest, source_key, shape, original_model,
                     judge or "imported-judge")  # fmt: skip
    result = AdoptResult(name, shape, kind or "", match, 0)
    with (
        import_space(store, path, CANDIDATES_NEED, source.name),
        store.sample_lookup(ds.id if ds else None) as lookup,
        store.staged_samples() as originals,
        store.staged_candidates() as staged,
    ):
        matcher = Matcher(path, lookup, match, shape)
        # The kind decides how raw replies are read: until it is known, as instructions.
        given = kind or ("other" if shape == "pairs" else None)
        reading = given or "instruction"
        evidence = False
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, CHUNK)):
            try:
                new_samples = matcher.match_rows(chunk)
            except TooManyRecords:
                counted = matcher.position + len(chunk) + sum(1 for _ in rows)
                raise matcher.count_error(counted) from None
            result.records += len(chunk)
            tell("read", result.records, None)
            result.matched += sum(1 for row in chunk if row.sample_id is not None)
            for sample in new_samples:  # an upload's name, not its temporary copy
                sample.source = source.name
            originals.add(new_samples)  # sets their content hashes
            evidence |= _stage(chunk, matcher.samples, staged, source, reading, result)
        matcher.finish()
        kind = given or ("instruction" if evidence else "response")
        if shape == "raw" and kind != reading:
            _read_again(staged, lookup, kind)
        result.kind = kind
        settings = {"path": source.name, "sha256": digest, "shape": shape, "kind": kind,
                    "match": match, "model": model, "fields": fields,
                    **({"split": split_read} if split_read else {})}  # fmt: skip
        tell("publish", result.records, None)
        with store.transaction():
            ds = ds or store.ensure_dataset(name)
            with store.run("import-candidates", ds.id, settings) as run:
                result.run_id = run.id
                start = store.max_position(ds.id)
                result.samples_added, _ = originals.publish(
                    ds.id, 0 if start is None else start + 1
                )
                published = staged.publish(ds.id, stored_id(run), kind)
                result.candidates_added = published["added"]
                result.already_imported = published["already"]
                result.statuses = published["statuses"]
                result.scores = published["scores"]
                run.counters = {
                    "records": result.records, "samples_added": result.samples_added,
                    "candidates_added": result.candidates_added,
                    "already_imported": result.already_imported, "unchanged": result.unchanged,
                    "statuses": result.statuses, "scores": result.scores,
                    "judge_unparsed": result.judge_unparsed,
                }  # fmt: skip
    with index_space(source.name, result.samples_added + result.candidates_added):
        store.index_search_backlog_told(tell)
    tell("done", result.candidates_added, None)
    return result


@dataclass
class _Source:
    """What every candidate of one file says about where it came from."""

    name: str
    digest: str
    key: str
    shape: str
    original_model: str
    scorer: str


def _stage(
    rows: list[Row],
    samples: dict[int, Sample],
    staged: CandidateStaging,
    source: _Source,
    kind: str,
    result: AdoptResult,
) -> bool:
    """Build a chunk's candidates (and judge scores) and stage them; returns whether any
    record rewrites the instruction."""
    evidence = False
    batch: list[tuple[Candidate, str | None, str]] = []
    scores: list[tuple[Any, ...]] = []
    for row in rows:
        sample = samples[row.sample_id] if row.sample_id is not None else row.original
        assert sample is not None  # a row matched a sample or carries its new original
        candidate = _version(row, sample, kind)
        evidence = evidence or _rewrites_instruction(source.shape, row, sample, candidate)
        if row.raw is None and same_content(sample, candidate):
            result.unchanged += 1
            continue
        candidate.sample_id = row.sample_id or 0  # a new original's is set on publish
        suffix = f":{source.key[:24]}:{row.number}"
        candidate.origin = {"source": "import", "file": source.name, "sha256": source.digest,
                            "record": row.number, **row.where, "shape": source.shape,
                            "model": row.model}  # fmt: skip
        if source.shape == "pairs" and source.original_model:
            candidate.origin["original_model"] = source.original_model
        new_hash = sample.content_hash if row.sample_id is None else None
        batch.append((candidate, new_hash, suffix))
        if row.judge.get("scores", 0) is None or row.judge.get("scores_reverse", 0) is None:
            result.judge_unparsed += 1
        scores += _judge_rows(row, suffix, source.scorer)
    staged.add(batch)
    staged.add_scores(scores)
    return evidence


def _read_again(staged, lookup, kind: str) -> None:
    """Raw replies turned out to be response reflections: read them with that template."""
    for chunk in staged.raw_replies():
        samples = lookup.samples(sample_id for _, _, sample_id in chunk if sample_id)
        for seq, raw, sample_id in chunk:
            parsed = parse(raw, "response")
            sample = samples[sample_id]
            staged.replace(seq, critique=parsed.critique, status=parsed.status,
                           error=parsed.reason, instruction=sample.instruction,
                           input=sample.input, output=parsed.output)  # fmt: skip


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
