"""Precompute the demo's model scores into data/demo/scores.jsonl, so the app needs no model.

For every demo sample's original and both candidates: the IFD / r-IFD family with SmolLM2
(alpaca template, the library's definitions), and for the candidates topic drift with
all-MiniLM-L6-v2. One JSON line per (position, version, metric, scorer): the format
`reflection.demo` loads. Text statistics are not stored: the demo builder computes them.

    python bench/make_demo_scores.py            # rewrites data/demo/scores.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "data" / "demo"


def _read(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO)
    parser.add_argument("--template", default="alpaca")
    args = parser.parse_args()

    from reflection.records import DRIFT_THRESHOLD
    from reflection.scoring import drift
    from reflection.scoring.ifd import compute_ifd
    from reflection.scoring.pairs import Pair
    from reflection.scoring.runner import student_scores
    from reflection.scoring.student import load_student

    samples = _read(args.data / "samples.jsonl")
    candidates = _read(args.data / "candidates.jsonl")
    versions: list[tuple[int, str, Pair]] = []
    for position, s in enumerate(samples):
        versions.append((position, "original", Pair(s["instruction"], s.get("input", ""), s.get("output", ""))))  # fmt: skip
    for c in candidates:
        s = samples[c["position"]]
        # As reflection.scoring.versions reads a candidate: empty fields keep the original's.
        instruction, input = (c["instruction"], c.get("input", "")) if c.get("instruction") else (s["instruction"], s.get("input", ""))  # fmt: skip
        versions.append((c["position"], c["kind"], Pair(instruction, input, c.get("output") or s.get("output", ""))))  # fmt: skip

    student = load_student("smollm2", "cpu")
    scorer = student.scorer(args.template)
    results = compute_ifd(student, [p for _, _, p in versions], args.template)
    rows = []
    for (position, version, _pair), result in zip(versions, results, strict=True):
        for score in student_scores(0, None, result, student.name, args.template, scorer):
            rows.append({"position": position, "version": version, "metric": score.metric,
                         "scorer": score.scorer, "value": score.value, "detail": score.detail})  # fmt: skip

    reflected = [(pos, kind, pair) for pos, kind, pair in versions if kind != "original"]
    originals = {pos: pair for pos, kind, pair in versions if kind == "original"}
    sims = drift.similarities(
        [
            (drift.instruction_text(originals[pos].instruction, originals[pos].input),
             drift.instruction_text(pair.instruction, pair.input))
            for pos, _, pair in reflected
        ]
    )  # fmt: skip
    for (position, version, _pair), value in zip(reflected, sims, strict=True):
        rows.append({"position": position, "version": version, "metric": "drift",
                     "scorer": drift.EMBEDDER, "value": value,
                     "detail": {"drift": value < DRIFT_THRESHOLD, "threshold": DRIFT_THRESHOLD}})  # fmt: skip

    order = {"original": 0}
    rows.sort(key=lambda r: (r["position"], order.get(r["version"], 1), r["version"], r["metric"]))
    out = args.data / "scores.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")  # fmt: skip
    print(f"wrote {len(rows)} scores for {len(versions)} versions to {out}")


if __name__ == "__main__":
    main()
