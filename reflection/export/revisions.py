"""Export reviewers' edits as revision pairs: training data for a reviser (CoachLM).

One record for each human edit in force (a sample whose state is `edited`): the original pair,
the version the reviewer started from and its kind, the oracle's critique of that version where
there was one, the edited pair with a word-level change summary, the reviewer and the time.
An edit later undone is not in force, so it is not exported.

Shapes (`--as`):
- `jsonl`: the full record, one JSON object a line (the HF `datasets` JSON loader reads it);
- `openai`: {messages: [system, user, assistant]}; the user asks to revise the original pair,
  the assistant answers with the human revision (CoachLM's setup);
- `sharegpt`: the same conversation as {conversations: [{from, value}]} with a `system` field.
The same database state always gives the same bytes; the file is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..diff import diff_stats, word_diff
from ..errors import ReflectionError
from ..formats.records import to_chat
from ..formats.writers import write_records
from ..records import stored_id
from ..store import Store
from .curated import ExportResult

REVISION_SHAPES = ("jsonl", "openai", "sharegpt")
FIELDS = ("instruction", "input", "output")
REVISER_SYSTEM = (
    "You are an expert reviewer of instruction-tuning data. Revise the instruction-response"
    " pair you are given so that the instruction is clear and the response is correct, complete"
    " and helpful. Answer with the revised pair in the same layout."
)


def pair_text(pair: dict[str, str]) -> str:
    """An instruction pair laid out for a prompt (the input section only when there is one)."""
    parts = [f"### Instruction:\n{pair['instruction']}"]
    if pair.get("input"):
        parts.append(f"### Input:\n{pair['input']}")
    parts.append(f"### Response:\n{pair['output']}")
    return "\n\n".join(parts)


def revise_prompt(original: dict[str, str]) -> str:
    return f"Revise this instruction-response pair.\n\n{pair_text(original)}"


@dataclass(frozen=True)
class RevisionFilter:
    """Which edits to export: by reviewer, by decision time (ISO strings), by size of change."""

    reviewers: Sequence[str] = ()
    since: str = ""
    until: str = ""
    min_words_changed: int = 0


def _pair(source: Any) -> dict[str, str]:
    return {name: getattr(source, name) for name in FIELDS}


def change_summary(before: dict[str, str], after: dict[str, str]) -> dict[str, Any]:
    """Words kept, deleted and inserted per field, and in all (`words_changed`)."""
    summary: dict[str, Any] = {}
    changed = 0
    for name in FIELDS:
        stats = diff_stats(word_diff(before[name], after[name]))
        summary[name] = stats
        changed += stats["deleted"] + stats["inserted"]
    summary["words_changed"] = changed
    return summary


def revision_records(
    store: Store, dataset: str | int, where: RevisionFilter | None = None
) -> list[dict[str, Any]]:
    """The full revision records of a dataset, in source order, filtered by `where`."""
    where = where or RevisionFilter()
    ds = store.dataset(dataset)
    states = {
        sid: st
        for sid, st in store.states(ds.id).items()
        if st.status == "edited"
        and (not where.reviewers or st.annotator in where.reviewers)
        and (not where.since or st.decided_at >= where.since)
        and (not where.until or st.decided_at <= where.until)
    }
    edits = store.candidates_by_id(st.candidate_id for st in states.values() if st.candidate_id)
    bases = store.candidates_by_id(e.parent_id for e in edits.values() if e.parent_id)
    records = []
    for sample in store.samples(ds.id, sorted(states)):
        state = states[stored_id(sample)]
        edit = edits.get(state.candidate_id) if state.candidate_id is not None else None
        if edit is None:
            continue
        base = bases.get(edit.parent_id) if edit.parent_id else None
        original, revised = _pair(sample), _pair(edit)
        started = _pair(base) if base else original
        changes = change_summary(started, revised)
        if changes["words_changed"] < where.min_words_changed:
            continue
        records.append(
            {
                "sample_id": sample.id,
                "dataset": ds.name,
                "position": sample.position,
                "original": original,
                "base": {
                    "kind": base.kind if base else "original",
                    "candidate_id": base.id if base else None,
                    **started,
                },
                "critique": base.critique if base else "",
                "revised": revised,
                "changes": changes,
                "edit_id": edit.id,
                "reviewer": state.annotator,
                "decided_at": state.decided_at,
            }
        )
    records.sort(key=lambda r: (r["position"] is None, r["position"] or 0, r["sample_id"]))
    return records


def to_shape(record: dict[str, Any], shape: str) -> dict[str, Any]:
    """A revision record in one of REVISION_SHAPES."""
    if shape == "jsonl":
        return record
    if shape not in REVISION_SHAPES:
        raise ReflectionError(
            f"unknown revision shape {shape!r}; expected {', '.join(REVISION_SHAPES)}"
        )
    version = {
        "instruction": revise_prompt(record["original"]),
        "input": "",
        "output": pair_text(record["revised"]),
        "system": REVISER_SYSTEM,
        "history": [],
    }
    chat = to_chat(version, {}, "sharegpt" if shape == "sharegpt" else "messages")
    chat["sample_id"] = record["sample_id"]
    return chat


def export_revisions(
    store: Store,
    dataset: str | int,
    path: str | Path,
    shape: str = "jsonl",
    where: RevisionFilter | None = None,
) -> ExportResult:
    """Write the revision pairs of a dataset to `path` (JSONL) atomically; records a run."""
    if shape not in REVISION_SHAPES:
        raise ReflectionError(
            f"unknown revision shape {shape!r}; expected {', '.join(REVISION_SHAPES)}"
        )
    where = where or RevisionFilter()
    path = Path(path)
    ds = store.dataset(dataset)
    records = [to_shape(r, shape) for r in revision_records(store, ds.id, where)]
    settings = {
        "path": str(path),
        "format": "revisions",
        "as": shape,
        "reviewers": list(where.reviewers),
        "since": where.since,
        "until": where.until,
        "min_words_changed": where.min_words_changed,
    }
    counts = {"written": len(records), "edited": store.status_counts(ds.id)["edited"]}
    with store.run("export", ds.id, settings) as run:
        write_records(path, records, "jsonl")
        run.counters = counts
    return ExportResult(path, f"revisions/{shape}", len(records), counts, run.id)
