"""The demo database: hand-written pairs with reflections and scores, so the app is useful
with no API key and no model. Built from the text files in data/demo/ (JSONL, not binary)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError, ReflectionError
from .ingest.datasets import import_dataset
from .records import Candidate, Score, stored_id
from .store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "data" / "demo"
DEMO_DATASET = "demo"


def app_path() -> Path:
    """The Streamlit entry point, app.py, beside the package in a source checkout."""
    path = ROOT / "app.py"
    if not path.exists():
        raise ReflectionError(
            f"{path} not found: the app runs from a source checkout (pip install -e .)"
        )
    return path


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(path, f"invalid JSON: {exc.msg}", line=number) from None
    return rows


def build_demo(path: str | Path, data_dir: str | Path = DEMO_DIR) -> str:
    """Build a fresh demo database at `path`; returns a one-line summary."""
    path, data_dir = Path(path), Path(data_dir)
    if path.exists():
        raise ReflectionError(f"{path} already exists; remove it to rebuild the demo")
    with Store(path) as store:
        result = import_dataset(store, data_dir / "samples.jsonl", dataset=DEMO_DATASET)
        by_position = {
            s.position: stored_id(s) for s in store.samples(store.dataset(DEMO_DATASET).id)
        }
        candidates = _demo_candidates(data_dir / "candidates.jsonl", by_position)
        store.add_candidates(candidates.values())
        scores = _demo_scores(data_dir / "scores.jsonl", by_position, candidates)
        store.put_scores(scores)
        text_scores = _text_scores(store)
        suggested = _suggestions(store) if scores else 0
    return (
        f"{result.added} samples, {len(candidates)} candidates,"
        f" {len(scores) + text_scores} scores, {suggested} suggestions in dataset {DEMO_DATASET!r}"
    )


def _demo_candidates(
    path: Path, by_position: dict[int | None, int]
) -> dict[tuple[int | None, str], Candidate]:
    found = {}
    for number, row in _jsonl(path):
        sample_id = by_position.get(row.get("position"))
        if sample_id is None:
            raise InputError(path, f"position {row.get('position')!r} has no sample", line=number)
        found[(row["position"], row["kind"])] = Candidate(
            sample_id=sample_id,
            kind=row["kind"],
            instruction=row.get("instruction", ""),
            input=row.get("input", ""),
            output=row.get("output", ""),
            critique=row.get("critique", ""),
            raw=row.get("raw", ""),
            status=row.get("status", "ok"),
            model=row.get("model", "demo-oracle"),
            origin={"file": f"data/demo/{path.name}", "line": number},
        )
    return found


def _demo_scores(
    path: Path,
    by_position: dict[int | None, int],
    candidates: dict[tuple[int | None, str], Candidate],
) -> list[Score]:
    """Precomputed scores (student-model IFD and the like) keyed by position and version."""
    scores = []
    for number, row in _jsonl(path):
        sample_id = by_position.get(row.get("position"))
        version = row.get("version", "original")
        candidate = (
            None if version == "original" else candidates.get((row.get("position"), version))
        )
        if sample_id is None or (version != "original" and candidate is None):
            raise InputError(
                path, f"no sample version {row.get('position')}/{version}", line=number
            )
        scores.append(
            Score(
                sample_id=sample_id,
                candidate_id=candidate.id if candidate else None,
                metric=row["metric"],
                scorer=row.get("scorer", ""),
                value=row["value"],
                detail=row.get("detail", {}),
            )
        )
    return scores


def _suggestions(store: Store) -> int:
    """The Selective Reflection-Tuning rule over the precomputed student scores."""
    from .select.suggestions import suggest

    return suggest(store, DEMO_DATASET, "selective")["suggested"]


def _text_scores(store: Store) -> int:
    """Cheap text statistics, computed now rather than stored, when the scorer is available."""
    from .scoring.runner import score_text

    return score_text(store, DEMO_DATASET).counters["scores"]
